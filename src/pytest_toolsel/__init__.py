"""pytest-toolsel: tool-selection regression tests for function-calling models."""

__version__ = "0.1.0"
