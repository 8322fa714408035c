"""Inference backends behind one contract (Polygraphy-style runners)."""
