"""Errors raised while resolving or loading a model."""


class ModelError(Exception):
    """Base class for model errors whose message is meant for the user."""


class ModelNotFoundError(ModelError):
    """The reference names no bundled model, local folder or allowed hub id."""


class UnsafeModelError(ModelError):
    """The model would need pickle loading or remote code to load."""
