"""The intermediate representation: the op registry (shape rule, NumPy reference, VJP
rule), the graph (networkx; one node per op per step, one per parameter), the reference
evaluator, and the loop analysis that re-rolls an unrolled graph. Knows nothing of YAML.
"""
