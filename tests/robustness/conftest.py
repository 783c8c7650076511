"""Fixtures for the robustness tests: a run store, tiny models and data, and the app."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = REPOSITORY_ROOT / "dashboard" / "app.py"
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from halluscope.runs import RunStore  # noqa: E402

APP_TIMEOUT_S = 60
LABEL_NAMES = ("no", "yes")
TINY_TEXTS = (
    "The river Velmar runs 212 kilometres to the sea.",
    "The Quaskel Works opened in 1912.",
    "Brena Tholk founded the works in 1874.",
    "The Velmar floods every spring.",
    "Drimford lies on the north bank of the Velmar.",
    "The works employed forty weavers.",
)


def write_tiny_classifier(
    folder: Path, *, max_positions: int = 512, seed: int = 0, nan_weights: bool = False
) -> Path:
    """Save a random 2-layer BERT classifier (labels no/yes) with the minilm tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from halluscope.models import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        id2label=dict(enumerate(LABEL_NAMES)),
        label2id={name: index for index, name in enumerate(LABEL_NAMES)},
    )
    model = BertForSequenceClassification(config)
    if nan_weights:
        with torch.no_grad():
            model.bert.embeddings.LayerNorm.weight.fill_(float("nan"))
    model.save_pretrained(folder)
    # The tokenizer keeps its limit of 512 tokens, so only the model config
    # knows about a smaller position table.
    tokenizer.save_pretrained(folder)
    return folder


def write_tiny_data(path: Path, rows: int = 24, *, extra: str = "") -> Path:
    """Write a CSV with ``rows`` rows of text (plus ``extra``) and alternating no/yes labels."""
    lines = ["text,label"]
    for index in range(rows):
        text = f"{TINY_TEXTS[index % len(TINY_TEXTS)]} {extra}Row {index}."
        lines.append(f'"{text}",{LABEL_NAMES[index % 2]}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh run store folder, set as ``$HALLUSCOPE_HOME``."""
    folder = tmp_path / "home"
    monkeypatch.setenv("HALLUSCOPE_HOME", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return folder


@pytest.fixture
def store(home: Path) -> RunStore:
    return RunStore(home)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_classifier(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture
def make_app(home: Path) -> Callable[..., AppTest]:
    """Build an ``AppTest`` of the dashboard with empty Streamlit caches, not yet run."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()

    def build(language: str = "en") -> AppTest:
        app = AppTest.from_file(str(APP_PATH), default_timeout=APP_TIMEOUT_S)
        app.session_state["language"] = language
        return app

    return build


@pytest.fixture
def keep_signal_handlers() -> Iterator[None]:
    """Restore SIGTERM and SIGINT handlers that an in-process ``halluscope train`` replaces."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def open_page(app: AppTest, page: str) -> AppTest:
    """Run the app once, switch to ``views/<page>.py`` and run it."""
    app.run()
    app.switch_page(f"views/{page}.py")
    return app.run()


def upload(app: AppTest, name: str, content: bytes) -> AppTest:
    """Upload ``content`` as ``name`` on the Data page and run the app."""
    app.run()
    app.radio(key="data_source").set_value("upload").run()
    app.file_uploader(key="data_upload").upload(name, content, "text/csv")
    return app.run()


def shown_texts(app: AppTest) -> list[str]:
    """Return the text of every message, title, caption and markdown element of the page."""
    texts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "info",
                 "success", "warning", "error", "exception"):  # fmt: skip
        texts.extend(str(element.value) for element in getattr(app, kind))
    return texts


def make_completed_run(
    store: RunStore,
    model_dir: Path,
    *,
    name: str = "tiny run",
    texts: tuple[str, ...] = TINY_TEXTS[:4],
) -> str:
    """Create a completed classification run whose model is a copy of ``model_dir``.

    Its validation split holds ``texts`` with alternating labels no/yes.
    """
    import shutil

    from halluscope.training import ClassifierTrainConfig

    config = ClassifierTrainConfig(
        model=str(model_dir),
        data_path=str(REPOSITORY_ROOT / "assets" / "demo" / "claims.csv"),
        text_column="text",
        label_column="label",
        max_length=64,
    )
    record = store.create_run(
        kind="classification",
        model=config.model,
        data=config.data_path,
        config=config.to_dict(),
        name=name,
    )
    shutil.copytree(model_dir, store.run_dir(record.run_id) / "model")
    texts = list(texts)
    store.write_json(
        record.run_id,
        "split.json",
        {
            "label_names": list(LABEL_NAMES),
            "train_row_numbers": [5, 6],
            "validation": {
                "texts": texts,
                "text_pairs": None,
                "labels": [index % 2 for index in range(len(texts))],
                "row_numbers": list(range(1, len(texts) + 1)),
            },
        },
    )
    store.set_metrics(record.run_id, {"accuracy": 0.5, "f1_macro": 0.5})
    store.set_status(record.run_id, "completed")
    return record.run_id
