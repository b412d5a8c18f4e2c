"""The front end: a YAML spec -> a validated, typed ``Spec`` with every value's place in
the file. The equation language of custom cells (parsed, never evaluated) and its shape
rules; the built-in cells as YAML data; the JSON Schema. Knows nothing of graphs.
"""
