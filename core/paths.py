"""Per-user folders for the run store and the model cache."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "HALLUSCOPE_HOME"
CACHE_ENV = "HALLUSCOPE_CACHE"


def default_home() -> Path:
    """Return the run store folder: ``$HALLUSCOPE_HOME`` or the per-user data folder."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser().resolve()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home).expanduser().resolve() / "halluscope"


def default_cache() -> Path:
    """Return the model cache folder: ``$HALLUSCOPE_CACHE`` or the per-user cache folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser().resolve()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser().resolve() / "halluscope"
