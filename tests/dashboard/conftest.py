"""Fixtures for the dashboard page tests: a temporary run store and a tiny fine-tuned run."""

from __future__ import annotations

import re
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
LABEL_NAMES = ("hallucinated", "supported")
KEY_PATTERN = re.compile(r"^[a-z_]+\.[a-z0-9_]+$")

VALIDATION_EXAMPLES = (
    (
        "Brena Tholk founded the Quaskel Works in Drimford in 1874 with 40 weavers.",
        "The Quaskel Works was founded in 1874.",
        1,
        3,
    ),
    (
        "Brena Tholk founded the Quaskel Works in Drimford in 1874 with 40 weavers.",
        "The Quaskel Works was founded in 1912.",
        0,
        8,
    ),
    (
        "The river Velmar runs 212 kilometres from Stonmere to the sea at Kelvale.",
        "The Velmar runs 212 kilometres.",
        1,
        11,
    ),
    (
        "The river Velmar runs 212 kilometres from Stonmere to the sea at Kelvale.",
        "The Velmar runs 90 kilometres and floods every spring.",
        0,
        17,
    ),
)
"""(context, claim, label id, source row number) of the tiny run's validation split."""
HEAD_BIAS = 6.0
FLAGGED_ROWS = {3, 11}
"""Source rows of the supported examples, which the biased tiny model gets confidently wrong."""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh run store folder, set as ``$HALLUSCOPE_HOME`` for the app under test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("HALLUSCOPE_HOME", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return folder


@pytest.fixture
def store(home: Path) -> RunStore:
    return RunStore(home)


@pytest.fixture
def make_app(home: Path) -> Callable[..., AppTest]:
    """Build an ``AppTest`` of the dashboard in a language, not yet run."""

    def build(language: str = "en") -> AppTest:
        app = AppTest.from_file(str(APP_PATH), default_timeout=APP_TIMEOUT_S)
        app.session_state["language"] = language
        return app

    return build


def open_page(app: AppTest, page: str) -> AppTest:
    """Run the app once (to register the pages), switch to ``views/<page>.py`` and run it."""
    app.run()
    app.switch_page(f"views/{page}.py")
    return app.run()


def shown_texts(app: AppTest) -> list[str]:
    """Return every text the page shows: titles, messages, metrics and widget labels."""
    texts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "info",
                 "success", "warning", "error"):  # fmt: skip
        texts.extend(str(element.value) for element in getattr(app, kind))
    texts.extend(str(metric.label) for metric in app.metric)
    for kind in ("button", "checkbox", "selectbox", "radio", "number_input", "text_input",
                 "multiselect", "text_area"):  # fmt: skip
        texts.extend(str(widget.label) for widget in getattr(app, kind))
    return texts


def _write_tiny_model(folder: Path) -> None:
    """Save a random 2-layer BERT classifier with a biased head, plus the minilm tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from halluscope.models import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        id2label=dict(enumerate(LABEL_NAMES)),
        label2id={name: index for index, name in enumerate(LABEL_NAMES)},
    )
    model = BertForSequenceClassification(config)
    # A large bias makes every prediction "hallucinated" with confidence above
    # 0.99, so the two supported examples are confidently wrong (flagged).
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([HEAD_BIAS, -HEAD_BIAS]))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-model") / "model"
    _write_tiny_model(folder)
    return folder


@pytest.fixture
def tiny_run(store: RunStore, tiny_model_dir: Path) -> Iterator[str]:
    """A completed classification run with a tiny random model and a 4-example validation split."""
    import shutil

    from halluscope.training import ClassifierTrainConfig

    config = ClassifierTrainConfig(
        model="minilm",
        data_path=str(REPOSITORY_ROOT / "assets" / "demo" / "claims.csv"),
        text_column="context",
        text_pair_column="claim",
        label_column="label",
        max_length=64,
    )
    record = store.create_run(
        kind="classification",
        model="minilm",
        data=config.data_path,
        config=config.to_dict(),
        name="tiny test run",
    )
    run_dir = store.run_dir(record.run_id)
    shutil.copytree(tiny_model_dir, run_dir / "model")
    store.write_json(
        record.run_id,
        "split.json",
        {
            "label_names": list(LABEL_NAMES),
            "train_row_numbers": [1, 2],
            "validation": {
                "texts": [example[0] for example in VALIDATION_EXAMPLES],
                "text_pairs": [example[1] for example in VALIDATION_EXAMPLES],
                "labels": [example[2] for example in VALIDATION_EXAMPLES],
                "row_numbers": [example[3] for example in VALIDATION_EXAMPLES],
            },
        },
    )
    store.set_metrics(record.run_id, {"accuracy": 0.5, "f1_macro": 0.5})
    store.set_status(record.run_id, "completed")
    yield record.run_id
