"""Convert a GGUF checkpoint once to a safetensors folder in the model cache.

transformers can read GGUF files (with the ``gguf`` package) but dequantizes
every tensor on each load, which takes about 15 s for SmolLM2-135M on 2 CPU
cores. Converting once to float32 safetensors makes later loads take well under
a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

from halluscope.paths import default_cache

logger = logging.getLogger(__name__)

_DONE_MARKER = "halluscope-conversion.json"


def _file_fingerprint(path: Path) -> str:
    """Return a cheap fingerprint (size and the SHA-256 of the first MiB) of ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
    return f"{path.stat().st_size}-{digest.hexdigest()[:16]}"


def ensure_converted(gguf_path: Path, *, name: str, cache_dir: Path | None = None) -> Path:
    """Return a safetensors folder for ``gguf_path``, converting it on first use.

    The conversion writes to a temporary folder beside the target and renames it
    into place, so an interrupted conversion never leaves a half-written model.
    """
    cache_dir = cache_dir or default_cache() / "models"
    target = cache_dir / name
    fingerprint = _file_fingerprint(gguf_path)

    marker = target / _DONE_MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        if recorded.get("fingerprint") == fingerprint:
            return target
        logger.info("Cached conversion of %s is stale; converting again.", gguf_path.name)

    cache_dir.mkdir(parents=True, exist_ok=True)
    logger.info("Converting %s to safetensors in %s (once).", gguf_path.name, target)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir))
    try:
        _convert(gguf_path, staging)
        (staging / _DONE_MARKER).write_text(
            json.dumps({"source": str(gguf_path), "fingerprint": fingerprint}), encoding="utf-8"
        )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf_path: Path, out_dir: Path) -> None:
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file_name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=file_name, dtype=torch.float32, trust_remote_code=False
    )

    # transformers refuses save_pretrained on a GGUF-loaded model, because it
    # still carries the quantization settings. The tensors are already
    # dequantized, so the weights and a config without those settings are
    # written directly. save_model keeps tied weights (embeddings and lm_head)
    # stored once.
    save_model(model, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(out_dir)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
