"""Provenance of a run: hashes of its data and base model, and the library versions.

``record_provenance`` writes ``runs/<run_id>/provenance.json`` when a run
starts, so a later reader can tell whether the data file or the base model
changed since, and which versions of torch, transformers, peft and halluscope
trained it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from halluscope.runs.store import RunStore

logger = logging.getLogger(__name__)

PROVENANCE_FILE = "provenance.json"

TRACKED_PACKAGES = ("torch", "transformers", "peft", "halluscope")
"""Distributions whose installed versions are recorded."""

WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth")
"""File suffixes counted as model weights when hashing a model folder."""


def file_sha256(path: str | os.PathLike) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Return the installed version of each distribution in ``names`` (None when missing)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def weight_hashes(folder: Path) -> dict[str, str]:
    """Return ``{relative path: sha256}`` of every weight file under ``folder``, sorted by path."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
            hashes[str(path.relative_to(folder))] = file_sha256(path)
    return hashes


def _data_entry(data_path: str | None) -> dict[str, Any]:
    if not data_path:
        return {"path": None, "sha256": None, "error": "The run's settings name no data file."}
    path = Path(data_path)
    try:
        return {"path": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size}
    except OSError as error:
        return {"path": str(path), "sha256": None, "error": str(error)}


def _model_entry(reference: str | None, allow_hub: bool) -> dict[str, Any]:
    from halluscope.models import ModelError, resolve_model

    if not reference:
        return {"reference": None, "error": "The run's settings name no model."}
    try:
        resolved = resolve_model(reference, allow_hub=allow_hub)
    except ModelError as error:
        return {"reference": reference, "error": str(error)}
    entry: dict[str, Any] = {"reference": reference, "path": resolved.path}
    if resolved.is_hub:
        # NOTE: a hub model is downloaded later, by from_pretrained, so its files
        # are not on disk here and are not hashed.
        entry["weights_sha256"] = {}
        entry["error"] = "Hub model: the weights are fetched at load time and not hashed."
        return entry
    try:
        entry["weights_sha256"] = weight_hashes(Path(resolved.path))
    except OSError as error:
        entry["error"] = str(error)
    return entry


def collect_provenance(config: dict[str, Any]) -> dict[str, Any]:
    """Return the provenance of a run with settings ``config``.

    ``config`` is the run's ``config.json``: its ``data_path``, ``model`` and
    ``allow_hub`` keys are read. A missing file or an unresolvable model is
    recorded as an ``error`` entry instead of raising, because provenance must
    never stop a run.
    """
    return {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": _data_entry(config.get("data_path")),
        "base_model": _model_entry(config.get("model"), bool(config.get("allow_hub", False))),
        "versions": {**package_versions(), "python": platform.python_version()},
    }


def record_provenance(store: RunStore, run_id: str) -> dict[str, Any]:
    """Collect the provenance of ``run_id`` from its settings and write ``provenance.json``."""
    provenance = collect_provenance(store.config(run_id))
    store.write_json(run_id, PROVENANCE_FILE, provenance)
    logger.info("Run %s: provenance recorded.", run_id)
    return provenance


def read_provenance(store: RunStore, run_id: str) -> dict[str, Any] | None:
    """Return the run's ``provenance.json``, or None for a run recorded before it existed."""
    return store.read_json(run_id, PROVENANCE_FILE)


def data_changed(store: RunStore, run_id: str) -> bool | None:
    """Return whether the run's data file differs from the one it was trained on.

    Returns None when this cannot be determined: no provenance, no recorded
    hash, or the file is gone.
    """
    provenance = read_provenance(store, run_id) or {}
    data = provenance.get("data") or {}
    recorded, path = data.get("sha256"), data.get("path")
    if not recorded or not path or not Path(path).is_file():
        return None
    return file_sha256(path) != recorded
