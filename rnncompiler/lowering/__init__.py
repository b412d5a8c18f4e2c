"""Lowering: the optimised graph -> the loop plan every backend prints (``plan.py``)."""

from .plan import STEP_READS, LoopPlan, Plan, make_plan, saved_value

__all__ = ["STEP_READS", "LoopPlan", "Plan", "make_plan", "saved_value"]
