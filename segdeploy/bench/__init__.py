"""Benchmarking and accuracy: machine information, metrics, reports."""
