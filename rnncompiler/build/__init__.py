"""Spec -> forward graph: unrolling over time, the losses, the parameters and their
initial values.
"""
