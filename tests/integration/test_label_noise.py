"""Label-error ranking on the demo claims with injected label noise, with the bundled MiniLM."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from halluscope.demo import demo_path, inject_label_noise
from halluscope.training.embeddings import load_encoder
from halluscope.training.label_errors import rank_label_issues
from halluscope.training.splits import SplitExamples

pytestmark = pytest.mark.integration

logger = logging.getLogger(__name__)

NOISE_FRACTION = 0.2
LABEL_NAMES = ("hallucinated", "supported")


def test_ranking_finds_flipped_labels():
    frame = pd.read_csv(demo_path("claims.csv"), keep_default_na=False)
    noisy, flipped_positions = inject_label_noise(frame, NOISE_FRACTION, seed=0)
    flipped = np.zeros(len(noisy), dtype=bool)
    flipped[flipped_positions] = True
    examples = SplitExamples(
        texts=tuple(noisy["context"]),
        text_pairs=tuple(noisy["claim"]),
        labels=tuple(LABEL_NAMES.index(label) for label in noisy["label"]),
        label_names=LABEL_NAMES,
        row_numbers=tuple(range(1, len(noisy) + 1)),
    )

    issues = rank_label_issues(examples, load_encoder("minilm"), flipped=flipped)
    precision, recall = issues.precision_recall_at_k()
    found = int((issues.is_issue & flipped).sum())
    print(
        f"precision@k = recall@k = {precision:.3f} (k = {len(flipped_positions)}); "
        f"cleanlab marked {int(issues.is_issue.sum())} rows, {found} of them flipped"
    )

    assert len(flipped_positions) == 120
    assert precision == pytest.approx(recall)
    assert precision >= 0.7
    assert found >= 0.7 * len(flipped_positions)
    suggested = issues.suggested[flipped_positions]
    clean = np.asarray([LABEL_NAMES.index(label) for label in frame["label"]])
    assert (suggested == clean[flipped_positions]).mean() >= 0.7
