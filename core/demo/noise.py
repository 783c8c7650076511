"""Inject label noise into a labelled frame, for robustness experiments."""

from __future__ import annotations

import logging
import random

import pandas as pd

logger = logging.getLogger(__name__)

FLIPPED_COLUMN = "label_flipped"


def inject_label_noise(
    frame: pd.DataFrame,
    fraction: float,
    *,
    seed: int = 0,
    label_column: str = "label",
) -> tuple[pd.DataFrame, list[int]]:
    """Flip the labels of a seeded random subset of rows.

    Exactly ``round(fraction * len(frame))`` rows are flipped (Python's
    ``round``, which rounds halves to even). With two classes a flipped row
    gets the other class, and with more it gets a random other class. The
    input frame is not modified.

    Args:
        frame: The labelled rows.
        fraction: Share of rows to flip, in [0, 1].
        seed: Seed of the ``random.Random`` that picks the rows and new labels.
        label_column: The column that contains the labels.

    Returns:
        A copy of ``frame`` with flipped labels and a boolean ``label_flipped``
        column, and the sorted positional indices of the flipped rows.

    Raises:
        ValueError: ``fraction`` is outside [0, 1], ``label_column`` is
            missing, or rows must be flipped but the column has fewer than two
            classes.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}.")
    if label_column not in frame.columns:
        raise ValueError(
            f"Label column {label_column!r} is missing; the frame has {list(frame.columns)}. "
            "Pass label_column= with the name of the label column."
        )

    n_flips = round(fraction * len(frame))
    noisy = frame.copy()
    flipped = [False] * len(frame)
    if n_flips == 0:
        noisy[FLIPPED_COLUMN] = flipped
        return noisy, []

    labels = noisy[label_column].tolist()
    classes = sorted(set(labels), key=str)
    if len(classes) < 2:
        raise ValueError(
            f"Label column {label_column!r} has {len(classes)} class(es) {classes}; "
            "flipping a label needs at least two."
        )

    rng = random.Random(seed)
    positions = sorted(rng.sample(range(len(frame)), n_flips))
    for position in positions:
        others = [label for label in classes if label != labels[position]]
        labels[position] = others[0] if len(others) == 1 else rng.choice(others)
        flipped[position] = True

    noisy[label_column] = pd.Series(labels, index=noisy.index, dtype=frame[label_column].dtype)
    noisy[FLIPPED_COLUMN] = flipped
    logger.info(
        "Flipped %d of %d labels in column %r with seed %d", n_flips, len(frame), label_column, seed
    )
    return noisy, positions
