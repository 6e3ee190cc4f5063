"""Conformance kit for rotators (built-in or plugin): the real engine, the local stack, one suite.

Write a `ConformanceCase` (the rotator class, a fresh credential set up at the provider, the provider's
own login check) and subclass `RotatorConformance` in a test module; see docs/writing-a-rotator.md.
Test-time code: nothing on the rotation path imports it.
"""

from .case import ConformanceCase, Seed
from .kit import ConformanceFailure, Kit
from .stack import load_stack_env
from .suite import RotatorConformance

__all__ = ["ConformanceCase", "ConformanceFailure", "Kit", "RotatorConformance", "Seed", "load_stack_env"]
