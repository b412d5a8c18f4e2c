"""Optimisation passes: each a function ``Graph -> bool`` (changed or not), in a file of
its own; ``pipeline.py`` states their order."""
