"""Factories that fail, for the --model-factory error tests (the working models are in benchmarks/byo_models.py)."""

from __future__ import annotations

from torch import nn


def not_a_module() -> str:
    return "a string"


def raises() -> nn.Module:
    raise ValueError("the factory needs a config file")
