"""Bridges between the pages and ``halluscope``: the run store, uploads, workers, caches.

Nothing here computes model outputs itself. Functions either call
``halluscope`` or wrap its calls in Streamlit caches (``st.cache_resource`` for
models and the store, ``st.cache_data`` for tables), keyed so that two run
stores or two files never share an entry.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import streamlit as st

from halluscope.data import DEFAULT_MAX_BYTES
from halluscope.runs import RunRecord, RunStore, process_is_alive

logger = logging.getLogger(__name__)

UPLOADS_FOLDER = "uploads"
WORKER_LOG = "worker.log"
MAX_SAFE_NAME_CHARS = 80
AUTO_ATTRIBUTION_TOKEN_PASSES = 30_000
"""Attributions whose cost (tokens x forward-backward passes) is at most this run at once.

Longer ones wait for the Compute button. 30 000 covers integrated gradients
(52 passes) over about 570 tokens.
"""
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
UPLOAD_BLOCK_BYTES = 1 << 20
MAX_DATA_FILE_BYTES = DEFAULT_MAX_BYTES
"""Largest data file the pages read: 200 MB, the default limit of ``halluscope.data.read_table``.

``halluscope dashboard`` sets Streamlit's ``server.maxUploadSize`` to 200, which
Streamlit counts in MiB (209 715 200 bytes), so a file between the two limits
is uploaded and then rejected by the reader with a message naming both sizes.
"""


# The run store


@st.cache_resource(show_spinner=False)
def _store_for(home: str) -> RunStore:
    return RunStore(home)


def get_store() -> RunStore:
    """Return the run store of ``$HALLUSCOPE_HOME`` (or the per-user default), one per home."""
    from halluscope.paths import default_home

    return _store_for(str(default_home()))


def list_runs(store: RunStore, *, kind: str | None = None) -> list[RunRecord]:
    """Mark runs whose worker died as failed, then return the runs, newest first."""
    _reap_finished_workers()
    store.reap_stale_runs()
    return store.list_runs(kind=kind)


def completed_runs(store: RunStore, kind: str = "classification") -> list[RunRecord]:
    """Return the completed runs of ``kind`` that have a saved model, newest first."""
    return [
        record
        for record in list_runs(store, kind=kind)
        if record.status == "completed" and (store.run_dir(record.run_id) / "model").is_dir()
    ]


def runs_table(records: list[RunRecord]) -> pd.DataFrame:
    """Return one row per run: name, id, status, model, accuracy, macro F1, created."""
    rows = [
        {
            "name": record.name,
            "run_id": record.run_id,
            "status": record.status,
            "model": record.model,
            "accuracy": record.metrics.get("accuracy"),
            "f1_macro": record.metrics.get("f1_macro"),
            "created": record.created_at,
        }
        for record in records
    ]
    columns = ["name", "run_id", "status", "model", "accuracy", "f1_macro", "created"]
    return pd.DataFrame(rows, columns=columns)


# Uploads


def safe_file_name(name: str) -> str:
    """Return ``name`` reduced to a safe base name: no folders, no ``..``, only ``[A-Za-z0-9._-]``.

    Leading dots are removed (no hidden files, no ``..``) and the result is cut
    to ``MAX_SAFE_NAME_CHARS`` while keeping the extension; an empty result
    becomes ``upload``.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = _UNSAFE_NAME_CHARS.sub("_", base).lstrip(".")
    base = re.sub(r"\.{2,}", ".", base)
    if len(base) > MAX_SAFE_NAME_CHARS:
        stem, dot, extension = base.rpartition(".")
        if dot and len(extension) <= 10:
            base = stem[: MAX_SAFE_NAME_CHARS - len(extension) - 1] + "." + extension
        else:
            base = base[:MAX_SAFE_NAME_CHARS]
    return base or "upload"


def save_upload(home: Path, file_name: str, content: bytes | BinaryIO) -> Path:
    """Save an upload as ``<home>/uploads/<sha256 prefix>-<safe name>`` and return the path.

    The content hash in the name makes the path stable for the same bytes, so a
    re-upload neither duplicates the file nor invalidates cached results, and
    the training worker (a separate process) can read the file by path.
    ``content`` is bytes or a binary file object (such as Streamlit's
    ``UploadedFile``), which is hashed and copied in blocks of
    ``UPLOAD_BLOCK_BYTES`` without another copy of the whole file in memory.
    """
    stream: BinaryIO = io.BytesIO(content) if isinstance(content, bytes) else content
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    for block in iter(lambda: stream.read(UPLOAD_BLOCK_BYTES), b""):
        digest.update(block)
        size += len(block)

    folder = home / UPLOADS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest.hexdigest()[:16]}-{safe_file_name(file_name)}"
    if not path.is_file() or path.stat().st_size != size:
        temporary = path.with_name(f".{path.name}.part")
        stream.seek(0)
        with temporary.open("wb") as target:
            shutil.copyfileobj(stream, target, UPLOAD_BLOCK_BYTES)
        os.replace(temporary, path)
        logger.info("Saved upload %r (%d bytes) to %s.", file_name, size, path)
    return path


def file_identity(path: Path) -> str:
    """Return ``"<path>:<size>:<mtime_ns>"``, a cache key that changes when the file does."""
    stat = path.stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


# Data files


@st.cache_data(show_spinner=False, max_entries=16)
def read_table_cached(path: str, identity: str, file_name: str | None = None) -> Any:
    """Read a data file with ``halluscope.data.read_table``, cached per file identity.

    ``identity`` (from ``file_identity``) is part of the cache key only, so an
    edited file is read again. ``file_name`` is the name shown in messages
    (default: the file's own name). Raises ``DataError`` as ``read_table`` does.
    """
    from halluscope.data import read_table

    del identity
    return read_table(Path(path), file_name=file_name, max_bytes=MAX_DATA_FILE_BYTES)


DEMO_FILES = {"classification": "claims.csv", "generation": "qa.jsonl"}
"""The bundled demo file of each task."""


def demo_data_path(task: str = "classification") -> Path:
    """Return the path of the bundled demo file of ``task`` (claims.csv or qa.jsonl)."""
    from halluscope.demo import demo_path

    return Path(demo_path(DEMO_FILES[task]))


@dataclass(frozen=True)
class DataSelection:
    """A validated data file and its column mapping, as the Train page needs it.

    Attributes:
        path: Absolute path of the file (the bundled demo or a saved upload).
        display_name: File name to show (the name the user uploaded).
        text_column: Column with the text (for pairs: the context).
        label_column: Column with the labels.
        text_pair_column: Column with the second segment, or None.
        label_map: Raw label value to label name (None drops the row), or None.
        rows: Rows kept after validation.
        label_names: Class names in label-id order.
    """

    path: str
    display_name: str
    text_column: str
    label_column: str
    text_pair_column: str | None
    label_map: dict[str, str | None] | None
    rows: int
    label_names: tuple[str, ...]


@dataclass(frozen=True)
class GenerationSelection:
    """A validated data file mapped for fine-tuning a causal LM, as the Train page needs it.

    Attributes:
        path: Absolute path of the file (the bundled demo or a saved upload).
        display_name: File name to show (the name the user uploaded).
        prompt_column: Column with the question or instruction.
        answer_column: Column with the reference answer.
        context_column: Column with the grounding text, or None.
        rows: Rows kept after validation.
    """

    path: str
    display_name: str
    prompt_column: str
    answer_column: str
    context_column: str | None
    rows: int


@st.cache_data(show_spinner=False, max_entries=4)
def generation_demo_selection() -> GenerationSelection:
    """Return the bundled demo QA file with its guessed columns (the default generation data)."""
    from halluscope.data import guess_generation_schema, prepare_generation, read_table

    path = demo_data_path("generation")
    table = read_table(path)
    schema = guess_generation_schema(table.frame)
    data = prepare_generation(table, schema)
    return GenerationSelection(
        path=str(path),
        display_name=path.name,
        prompt_column=schema.prompt,
        answer_column=schema.answer,
        context_column=schema.context,
        rows=len(data.prompts),
    )


@st.cache_data(show_spinner=False, max_entries=4)
def demo_selection() -> DataSelection:
    """Return the bundled demo file validated with its guessed columns (the default data)."""
    from halluscope.data import guess_classification_schema, prepare_classification, read_table

    path = demo_data_path()
    table = read_table(path)
    schema = guess_classification_schema(table.frame)
    data = prepare_classification(table, schema)
    return DataSelection(
        path=str(path),
        display_name=path.name,
        text_column=schema.text,
        label_column=schema.label,
        text_pair_column=schema.text_pair,
        label_map=None,
        rows=len(data.labels),
        label_names=tuple(data.label_names),
    )


# Training workers


@st.cache_resource(show_spinner=False)
def _worker_processes() -> dict[str, subprocess.Popen]:
    """Worker processes started by this server, by run id, so that finished ones are reaped."""
    return {}


def _reap_finished_workers() -> None:
    workers = _worker_processes()
    for run_id, process in list(workers.items()):
        if process.poll() is not None:
            logger.info("Worker of run %s exited with status %s.", run_id, process.returncode)
            del workers[run_id]


def start_training(store: RunStore, config: Any, *, name: str | None = None) -> RunRecord:
    """Create a queued run for ``config`` and start ``halluscope train --run-id`` for it.

    The worker runs in its own session (so it survives a page reload and can be
    signalled alone) and writes its output to ``<run folder>/worker.log``. It
    marks the run running, completed, cancelled or failed itself.

    Args:
        store: The run store.
        config: A ``ClassifierTrainConfig`` or ``CausalLMTrainConfig``.
        name: Display name of the run; None lets the store make one.

    Returns:
        The record of the new run (still queued when this returns).
    """
    record = store.create_run(
        kind=config.kind,
        model=config.model,
        data=config.data_path,
        config=config.to_dict(),
        name=name or None,
    )
    command = [
        sys.executable,
        "-m",
        "halluscope.cli",
        "train",
        "--run-id",
        record.run_id,
        "--home",
        str(store.home),
    ]
    environment = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    log_path = store.run_dir(record.run_id) / WORKER_LOG
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment,
        )
    _worker_processes()[record.run_id] = process
    logger.info("Started worker %d for run %s.", process.pid, record.run_id)
    return record


def reproduce_run(store: RunStore, run_id: str, *, name: str | None = None) -> RunRecord:
    """Start a new run with the settings of ``run_id`` (same model, data, columns and seed).

    Raises:
        FileNotFoundError: the run's data file no longer exists.
    """
    from halluscope.training import CausalLMTrainConfig, ClassifierTrainConfig

    record = store.get(run_id)
    config_class = CausalLMTrainConfig if record.kind == "generation" else ClassifierTrainConfig
    config = config_class.from_dict(store.config(run_id))
    if not Path(config.data_path).is_file():
        raise FileNotFoundError(
            f"The data file {config.data_path} of run '{run_id}' no longer exists; "
            "choose the data again on the Data page and start a new run."
        )
    return start_training(store, config, name=name or f"{record.name} (reproduced)")


def cancel_training(store: RunStore, run_id: str) -> None:
    """Ask the worker of ``run_id`` to stop, and send it SIGTERM if it is alive.

    The worker stops after its current step and marks the run cancelled; a
    queued run whose worker never started is marked cancelled by the store.
    """
    store.request_cancel(run_id)
    pid = store.get(run_id).pid
    if pid and process_is_alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        else:
            logger.info("Sent SIGTERM to worker %d of run %s.", pid, run_id)


def worker_log_tail(store: RunStore, run_id: str, max_chars: int = 4000) -> str:
    """Return the last ``max_chars`` characters of the run's worker log ('' if none)."""
    path = store.run_dir(run_id) / WORKER_LOG
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    return text[-max_chars:]


# Models and predictions


@st.cache_resource(show_spinner=False, max_entries=2)
def load_run_model(model_dir: str) -> tuple[Any, Any]:
    """Load the fine-tuned classifier (eager attention) and tokenizer of a run folder.

    Cached per model folder; at most two models stay in memory.
    """
    from halluscope.models import load_sequence_classifier, load_tokenizer

    model = load_sequence_classifier(model_dir, attention="eager")
    tokenizer = load_tokenizer(model_dir)
    return model, tokenizer


@st.cache_data(show_spinner=False, max_entries=32)
def predictions_cached(
    home: str,
    run_id: str,
    data_path: str | None = None,
    data_identity: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Predict with a run on its validation split (``data_path`` None) or a file.

    Cached per (store, run, file identity, columns). Returns the predictions
    table and the summary of ``halluscope.workflows.predict_run``.
    """
    from halluscope.workflows import predict_run

    del data_identity
    result = predict_run(
        _store_for(home),
        run_id,
        data_path=Path(data_path) if data_path else None,
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
    )
    return result.table, dict(result.summary)


# Explanations of one example. Parameters starting with "_" are not hashed by
# st.cache_data. The text and settings that determine the result are hashed, so
# an entry never outlives its inputs.


@st.cache_data(show_spinner=False, max_entries=64)
def attention_cached(
    home: str,
    run_id: str,
    row_number: int,
    text: str,
    text_pair: str | None,
    max_length: int,
    _model: Any,
    _tokenizer: Any,
) -> Any:
    """Return ``extract_attention`` of one example, cached per (store, run, example, input)."""
    from halluscope.explain import extract_attention

    return extract_attention(_model, _tokenizer, text, text_pair, max_length=max_length)


@st.cache_data(show_spinner=False, max_entries=64)
def attributions_cached(
    home: str,
    run_id: str,
    row_number: int,
    method: str,
    text: str,
    text_pair: str | None,
    max_length: int,
    _model: Any,
    _tokenizer: Any,
) -> tuple[Any, Any]:
    """Attribute the predicted class of one example to its tokens and words.

    Cached per (store, run, example, method, input). Returns the
    ``TokenAttributions`` and the ``WordAttributions`` of ``aggregate_to_words``.
    """
    from halluscope.explain import aggregate_to_words, attribute

    attributions = attribute(
        _model, _tokenizer, text, text_pair, method=method, max_length=max_length
    )
    return attributions, aggregate_to_words(attributions, text, text_pair)


def frame_to_csv(frame: pd.DataFrame) -> bytes:
    """Return ``frame`` as UTF-8 CSV bytes without the index, for ``st.download_button``."""
    return frame.to_csv(index=False).encode("utf-8")


# Generation runs: model, answers and explanations of one answer.


@st.cache_resource(show_spinner=False, max_entries=2)
def load_generation_model(home: str, run_id: str) -> tuple[Any, Any]:
    """Load the fine-tuned causal LM (eager attention) and tokenizer of a generation run.

    Cached per (store, run); at most two models stay in memory.
    """
    from halluscope.answers import load_run_model

    return load_run_model(_store_for(home), run_id)


def answers_of(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    """Return the stored answer records of a generation run (read from disk on each call)."""
    from halluscope.answers import read_answers

    return read_answers(store, run_id)


@st.cache_data(show_spinner=False, max_entries=32)
def answer_sequence_cached(
    home: str,
    run_id: str,
    prompt: str,
    token_ids: tuple[int, ...],
    context: str | None,
    question: str | None,
    _tokenizer: Any,
) -> Any:
    """Return the labelled prompt-answer sequence of one stored answer."""
    from halluscope.explain import encode_prompt_response

    return encode_prompt_response(
        _tokenizer, prompt, list(token_ids), context=context, question=question
    )


@st.cache_data(show_spinner=False, max_entries=32)
def answer_attention_cached(
    home: str, run_id: str, prompt: str, token_ids: tuple[int, ...], _sequence: Any, _model: Any
) -> Any:
    """Return ``extract_sequence_attention`` of one answer, cached per (store, run, answer)."""
    from halluscope.explain import extract_sequence_attention

    return extract_sequence_attention(_model, _sequence)


@st.cache_data(show_spinner=False, max_entries=64)
def answer_attributions_cached(
    home: str,
    run_id: str,
    prompt: str,
    token_ids: tuple[int, ...],
    method: str,
    targets: tuple[int, ...] | None,
    _sequence: Any,
    _model: Any,
    _tokenizer: Any,
) -> Any:
    """Return ``attribute_answer`` of one answer, cached per (run, answer, method, targets).

    ``targets`` None attributes every answer token.
    """
    from halluscope.explain import attribute_answer

    return attribute_answer(
        _model, _tokenizer, _sequence, method=method, targets=list(targets) if targets else None
    )


# Training data: frozen encoders and nearest training rows.


@st.cache_resource(show_spinner=False, max_entries=2)
def load_frozen_encoder(reference: str, max_length: int) -> Any:
    """Load the frozen base encoder of a run (``halluscope.training.embeddings.load_encoder``)."""
    from halluscope.training.embeddings import load_encoder

    return load_encoder(reference, max_length=max_length)


@st.cache_resource(show_spinner=False, max_entries=4)
def training_index_cached(home: str, run_id: str, reference: str, max_length: int) -> Any:
    """Return the run's training rows with their embeddings, cached per (store, run)."""
    from halluscope.training.neighbours import build_training_index

    return build_training_index(
        _store_for(home), run_id, load_frozen_encoder(reference, max_length)
    )
