"""Tests of label-noise injection."""

from __future__ import annotations

import pandas as pd
import pytest

from halluscope.demo import inject_label_noise


def _binary(n_rows: int = 10) -> pd.DataFrame:
    labels = ["supported", "hallucinated"] * (n_rows // 2)
    return pd.DataFrame({"text": [f"row {i}" for i in range(n_rows)], "label": labels})


def test_noise_flips_exact_count() -> None:
    frame = _binary(10)
    noisy, flipped = inject_label_noise(frame, 0.3, seed=1)
    changed = (noisy["label"] != frame["label"]).to_numpy().nonzero()[0].tolist()
    assert len(flipped) == 3
    assert changed == flipped
    assert noisy["label_flipped"].tolist() == [i in flipped for i in range(10)]


def test_noise_binary_gets_other_class() -> None:
    frame = _binary(10)
    noisy, flipped = inject_label_noise(frame, 0.5, seed=4)
    for position in flipped:
        before = frame["label"].iloc[position]
        after = noisy["label"].iloc[position]
        expected = "supported" if before == "hallucinated" else "hallucinated"
        assert after == expected, position


def test_noise_multiclass_other_class() -> None:
    frame = pd.DataFrame({"y": ["a", "b", "c", "d"] * 5})
    noisy, flipped = inject_label_noise(frame, 1.0, seed=0, label_column="y")
    assert flipped == list(range(20))
    assert (noisy["y"] != frame["y"]).all()
    assert set(noisy["y"]) <= {"a", "b", "c", "d"}


def test_noise_same_seed_same_rows() -> None:
    frame = _binary(40)
    _, first = inject_label_noise(frame, 0.25, seed=9)
    _, second = inject_label_noise(frame, 0.25, seed=9)
    _, other = inject_label_noise(frame, 0.25, seed=10)
    assert first == second
    assert first != other


def test_noise_rounds_count() -> None:
    frame = _binary(10)
    _, flipped = inject_label_noise(frame, 0.14, seed=0)
    assert len(flipped) == 1


def test_noise_zero_fraction_keeps_labels() -> None:
    frame = _binary(6)
    noisy, flipped = inject_label_noise(frame, 0.0)
    assert flipped == []
    assert noisy["label"].tolist() == frame["label"].tolist()
    assert not noisy["label_flipped"].any()


def test_noise_input_unchanged() -> None:
    frame = _binary(10)
    original = frame.copy()
    inject_label_noise(frame, 0.5, seed=3)
    pd.testing.assert_frame_equal(frame, original)


def test_noise_keeps_integer_labels() -> None:
    frame = pd.DataFrame({"label": [0, 1, 0, 1]})
    noisy, flipped = inject_label_noise(frame, 0.5, seed=0)
    assert noisy["label"].dtype == frame["label"].dtype
    assert len(flipped) == 2


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_noise_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        inject_label_noise(_binary(), fraction)


def test_noise_rejects_missing_column() -> None:
    with pytest.raises(ValueError, match="Label column 'target' is missing"):
        inject_label_noise(_binary(), 0.2, label_column="target")


def test_noise_rejects_single_class() -> None:
    frame = pd.DataFrame({"label": ["a"] * 5})
    with pytest.raises(ValueError, match="needs at least two"):
        inject_label_noise(frame, 0.4)
