"""Backpropagation through time on the graph: full, or truncated (window lanes, chunks).
"""
