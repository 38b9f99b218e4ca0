"""The one error of model loading, in its own module so that every part of models/ can raise it."""

from __future__ import annotations


class ModelLoadError(Exception):
    """A model that cannot be loaded, as one sentence saying what is wrong and what to do."""
