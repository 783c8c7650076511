"""Settings of a classifier fine-tuning run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """Settings for fine-tuning a sequence classifier.

    Attributes:
        model: Model reference (bundled name, local folder or ``hub:ORG/NAME``).
        data_path: Training file (CSV, TSV, JSONL, JSON or Parquet).
        text_column: Column with the first text segment (for pairs: the context).
        label_column: Column with the labels.
        text_pair_column: Optional column with the second segment (the claim).
        label_map: Optional mapping of raw label values to label names; a value
            mapped to None drops the row, as do values missing from the map.
        validation_fraction: Share of rows held out for validation, in (0, 0.5].
        seed: Seed of the train/validation split, the head initialisation and
            the data order.
        learning_rate: Peak AdamW learning rate.
        epochs: Number of passes over the training split (fractions allowed).
        batch_size: Examples per optimisation step (and per eval batch).
        weight_decay: AdamW weight decay.
        max_length: Maximum tokens per example; longer contexts are truncated
            from the end of the first segment, the claim is kept whole.
        early_stopping_patience: Epochs without a lower validation loss before
            training stops; None turns early stopping off. The epoch kept
            is set by ``keep_best_epoch``.
        warmup_ratio: Share of steps with a linear learning-rate warm-up.
        max_steps: Stop after this many optimisation steps (-1: no limit).
        allow_hub: Allow a ``hub:`` model to be downloaded.
        label_smoothing: Share of the target probability spread evenly over
            all classes in the training loss, in [0, 1); 0 turns it off.
        dropout: Dropout probability of the hidden layers, attention and head,
            in [0, 1); None keeps the model's own.
        drop_label_issues: Before training, rank the training rows with
            ``halluscope.training.label_errors`` and leave out the ones marked
            as likely label errors.
        record_dynamics: Predict on the training split at every epoch end and
            store the training dynamics (``dynamics.json``) for the data map.
        keep_best_epoch: Keep the epoch with the lowest validation loss (the
            default); False keeps the last epoch, as an unregularised run would.
    """

    model: str
    data_path: str
    text_column: str
    label_column: str
    text_pair_column: str | None = None
    label_map: dict[str, str | None] | None = None
    validation_fraction: float = 0.2
    seed: int = 0
    learning_rate: float = 1e-4
    epochs: float = 10.0
    batch_size: int = 16
    weight_decay: float = 0.01
    max_length: int = 192
    early_stopping_patience: int | None = None
    warmup_ratio: float = 0.1
    max_steps: int = -1
    allow_hub: bool = False
    label_smoothing: float = 0.0
    dropout: float | None = None
    drop_label_issues: bool = False
    record_dynamics: bool = True
    keep_best_epoch: bool = True
    kind: str = field(default="classification", init=False)

    def __post_init__(self) -> None:
        checks = [
            (0.0 < self.validation_fraction <= 0.5, "validation_fraction must be in (0, 0.5]"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.epochs > 0, "epochs must be positive"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.weight_decay >= 0, "weight_decay must not be negative"),
            (16 <= self.max_length <= 8192, "max_length must be between 16 and 8192 tokens"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (
                self.dropout is None or 0 <= self.dropout < 1,
                "dropout must be in [0, 1) (or None to keep the model's own)",
            ),
            (
                self.early_stopping_patience is None or self.early_stopping_patience >= 1,
                "early_stopping_patience must be at least 1 (or None to turn it off)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Invalid training setting: {message}.")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClassifierTrainConfig:
        """Build settings from a dict, ignoring keys that are not settings."""
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{key: value for key, value in values.items() if key in names})
