"""Lowering: the optimised graph -> the loop plan every backend prints (``plan.py``)."""

from .plan import LoopPlan, Plan, make_plan

__all__ = ["LoopPlan", "Plan", "make_plan"]
