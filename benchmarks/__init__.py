"""Benchmarks: the product's speed and cost measured side by side with the alternatives.

Run them all with `python -m benchmarks.run` (see benchmarks/README.md).
"""
