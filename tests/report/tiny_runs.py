"""A completed classification run with a tiny random BERT, for report and Runs page tests.

The run looks like one trained on the bundled demo claims: its settings name
``assets/demo/claims.csv``, its events contain a short loss history, and its
validation split contains the given (context, claim, label, row) examples. The
classifier head is biased towards "hallucinated", so every supported example
is a confidently wrong prediction and gets flagged.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from halluscope.runs import RunStore

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DEMO_CLAIMS = REPOSITORY_ROOT / "assets" / "demo" / "claims.csv"
LABEL_NAMES = ("hallucinated", "supported")
HEAD_BIAS = 6.0

SCRIPT_CLAIM = "The Quaskel Works <script>alert('x')</script> was founded in 1874."
"""A claim with a script tag, which a report must show as text."""
CHINESE_CONTEXT = "布雷娜·索尔克于1874年在德里姆福德创办了夸斯克尔工坊，雇有四十名织工。"
CHINESE_CLAIM = "夸斯克尔工坊创办于1912年。"

EXAMPLES = (
    (
        "Brena Tholk founded the Quaskel Works in Drimford in 1874 with 40 weavers.",
        SCRIPT_CLAIM,
        1,
        3,
    ),
    (
        "Brena Tholk founded the Quaskel Works in Drimford in 1874 with 40 weavers.",
        "The Quaskel Works was founded in 1912.",
        0,
        8,
    ),
    (CHINESE_CONTEXT, CHINESE_CLAIM, 1, 11),
    (
        "The river Velmar runs 212 kilometres from Stonmere to the sea at Kelvale.",
        "The Velmar runs 90 kilometres and floods every spring.",
        0,
        17,
    ),
)
"""(context, claim, label id, source row number) of the validation split."""
FLAGGED_ROWS = {3, 11}
"""Rows of the supported examples, which the biased model gets confidently wrong."""

LOSS_EVENTS = (
    {"type": "data", "rows": 20, "train_rows": 16, "validation_rows": 4, "dropped_rows": 0,
     "labels": list(LABEL_NAMES)},
    {"type": "train_step", "step": 1, "loss": 0.71},
    {"type": "train_step", "step": 2, "loss": 0.65},
    {"type": "eval", "step": 2, "eval_loss": 0.69, "eval_accuracy": 0.5},
    {"type": "train_step", "step": 3, "loss": 0.52},
    {"type": "eval", "step": 4, "eval_loss": 0.61, "eval_accuracy": 0.75},
)  # fmt: skip


def write_tiny_model(folder: Path) -> None:
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
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([HEAD_BIAS, -HEAD_BIAS]))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def create_tiny_run(
    store: RunStore,
    model_dir: Path,
    *,
    name: str = "tiny report run",
    examples: Sequence[tuple[str, str, int, int]] = EXAMPLES,
    status: str = "completed",
) -> str:
    """Create a run in ``store`` with a copy of the model in ``model_dir``; return its id."""
    from halluscope.runs.provenance import record_provenance
    from halluscope.training import ClassifierTrainConfig

    config = ClassifierTrainConfig(
        model="minilm",
        data_path=str(DEMO_CLAIMS),
        text_column="context",
        text_pair_column="claim",
        label_column="label",
        max_length=64,
        epochs=1.0,
    )
    record = store.create_run(
        kind="classification",
        model="minilm",
        data=config.data_path,
        config=config.to_dict(),
        name=name,
    )
    run_id = record.run_id
    shutil.copytree(model_dir, store.run_dir(run_id) / "model")
    store.write_json(
        run_id,
        "split.json",
        {
            "label_names": list(LABEL_NAMES),
            "train_row_numbers": [1, 2],
            "validation": {
                "texts": [example[0] for example in examples],
                "text_pairs": [example[1] for example in examples],
                "labels": [example[2] for example in examples],
                "row_numbers": [example[3] for example in examples],
            },
        },
    )
    for event in LOSS_EVENTS:
        store.append_event(run_id, event)
    record_provenance(store, run_id)
    store.set_metrics(run_id, {"accuracy": 0.5, "f1_macro": 0.333, "eval_loss": 0.61})
    store.set_status(run_id, status)
    return run_id
