"""Factories that fail, for the --model-factory error tests (the working models are in benchmarks/byo_models.py)."""

from __future__ import annotations

from torch import nn


def not_a_module() -> str:
    return "a string"


def raises() -> nn.Module:
    raise ValueError("the factory needs a config file")


class _Broken(nn.Module):
    def forward(self, images):
        raise RuntimeError("shapes do not match: 3 vs 4")


def broken_forward() -> nn.Module:
    return _Broken()
