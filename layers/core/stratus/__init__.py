"""Stratus: a serverless machine-learning platform (shared core, shipped as a Lambda layer)."""

__version__ = "0.1.0"
