"""See the unrolled graph: a text summary, JSON and GraphML exports, and pictures (DOT,
SVG, PNG) laid out by time, with every parameter drawn once."""

from .export import to_dot, to_graphml, to_json
from .summary import summarize

__all__ = ["summarize", "to_dot", "to_graphml", "to_json"]
