"""Tests of the claim-verification demo set."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from halluscope.demo import generate_claims
from halluscope.demo.claims import CLAIM_COLUMNS, HALLUCINATION_TYPES


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    return generate_claims(600, seed=0)


def test_claims_columns_and_ids(claims: pd.DataFrame) -> None:
    assert list(claims.columns) == list(CLAIM_COLUMNS)
    assert claims["id"].iloc[0] == "c0001"
    assert claims["id"].iloc[-1] == "c0600"
    assert claims["id"].is_unique


def test_claims_labels_balanced(claims: pd.DataFrame) -> None:
    counts = claims["label"].value_counts()
    assert counts["supported"] == 300
    assert counts["hallucinated"] == 300
    assert set(counts.index) == {"supported", "hallucinated"}


def test_claims_type_shares(claims: pd.DataFrame) -> None:
    hallucinated = claims[claims["label"] == "hallucinated"]
    counts = hallucinated["hallucination_type"].value_counts()
    for kind in HALLUCINATION_TYPES:
        assert counts[kind] == 75, kind
    supported = claims[claims["label"] == "supported"]
    assert (supported["hallucination_type"] == "none").all()


def test_claims_odd_count_split() -> None:
    frame = generate_claims(11, seed=3)
    assert (frame["label"] == "supported").sum() == 6
    assert (frame["label"] == "hallucinated").sum() == 5
    assert (frame["hallucination_type"] == "number").sum() == 2
    assert (frame["hallucination_type"] == "added_fact").sum() == 1


def test_claims_no_duplicate_pairs(claims: pd.DataFrame) -> None:
    assert not claims.duplicated(subset=["context", "claim"]).any()


def test_claims_mean_length_close(claims: pd.DataFrame) -> None:
    lengths = claims["claim"].str.len().groupby(claims["label"]).mean()
    ratio = lengths["hallucinated"] / lengths["supported"]
    assert 0.85 <= ratio <= 1.15, lengths.to_dict()


def test_claims_two_clause_share_close(claims: pd.DataFrame) -> None:
    two_clause = claims["claim"].str.contains(" and ").groupby(claims["label"]).mean()
    assert abs(two_clause["hallucinated"] - two_clause["supported"]) < 0.1, two_clause.to_dict()


def test_claims_context_sentence_count(claims: pd.DataFrame) -> None:
    sentences = claims["context"].str.count(r"\. ") + 1
    assert sentences.min() == 3
    assert sentences.max() == 4


def test_claims_spans_match_words(claims: pd.DataFrame) -> None:
    for row in claims.itertuples():
        words = json.loads(row.altered_words)
        spans = json.loads(row.altered_spans)
        assert len(words) == len(spans), row.id
        for word, (start, end) in zip(words, spans, strict=True):
            assert row.claim[start:end] == word, (row.id, word, start, end)


def test_claims_altered_words_by_label(claims: pd.DataFrame) -> None:
    for row in claims.itertuples():
        words = json.loads(row.altered_words)
        if row.label == "supported":
            assert words == [], row.id
        else:
            assert words, row.id


def _lower_words(text: str) -> set[str]:
    return {word.strip(".,").lower() for word in text.split()}


def test_claims_supported_words_in_context(claims: pd.DataFrame) -> None:
    for row in claims[claims["label"] == "supported"].itertuples():
        missing = _lower_words(row.claim) - _lower_words(row.context) - {"and"}
        assert missing == set(), (row.id, missing)


def test_claims_pairs_share_context(claims: pd.DataFrame) -> None:
    groups = claims.groupby("context")["label"]
    assert (groups.size() == 2).all()
    assert (groups.nunique() == 2).all()


def _twins(claims: pd.DataFrame, hallucination_type: str) -> list[tuple[pd.Series, pd.Series]]:
    pairs = []
    for row in claims[claims["hallucination_type"] == hallucination_type].itertuples():
        twin = claims[(claims["context"] == row.context) & (claims["label"] == "supported")]
        pairs.append((claims.loc[row.Index], twin.iloc[0]))
    return pairs


@pytest.mark.parametrize("hallucination_type", ["number", "name", "date"])
def test_claims_twins_differ_at_altered_words(
    claims: pd.DataFrame, hallucination_type: str
) -> None:
    for hallucinated, supported in _twins(claims, hallucination_type):
        altered = set(json.loads(hallucinated["altered_words"]))
        new_words = hallucinated["claim"].split(" ")
        old_words = supported["claim"].split(" ")
        assert len(new_words) == len(old_words), hallucinated["id"]
        changed = {
            new.strip(".") for new, old in zip(new_words, old_words, strict=True) if new != old
        }
        assert changed == altered, (hallucinated["id"], changed, altered)


def test_claims_altered_values_absent(claims: pd.DataFrame) -> None:
    altered = claims[claims["hallucination_type"].isin(["number", "date"])]
    for row in altered.itertuples():
        words = json.loads(row.altered_words)
        context_words = {word.strip(".,") for word in row.context.split()}
        assert any(word not in context_words for word in words), (row.id, words)


def test_claims_name_swap_capitalised(claims: pd.DataFrame) -> None:
    for row in claims[claims["hallucination_type"] == "name"].itertuples():
        words = json.loads(row.altered_words)
        assert all(word[0].isupper() for word in words), (row.id, words)


def test_claims_number_similar_magnitude(claims: pd.DataFrame) -> None:
    for hallucinated, supported in _twins(claims, "number"):
        (word,) = json.loads(hallucinated["altered_words"])
        new_value = int(word.replace(",", ""))
        old_words = set(supported["claim"].rstrip(".").split(" "))
        old_numbers = [int(w.replace(",", "")) for w in old_words if w.replace(",", "").isdigit()]
        ratios = [new_value / old for old in old_numbers if old]
        assert any(0.3 <= ratio <= 3.0 for ratio in ratios), (hallucinated["id"], word)


def test_claims_date_keeps_format(claims: pd.DataFrame) -> None:
    for hallucinated, supported in _twins(claims, "date"):
        new_words = hallucinated["claim"].split(" ")
        old_words = supported["claim"].split(" ")
        for new, old in zip(new_words, old_words, strict=True):
            assert new.strip(".").isdigit() == old.strip(".").isdigit(), hallucinated["id"]


def test_claims_added_fact_words_absent(claims: pd.DataFrame) -> None:
    added = claims[claims["hallucination_type"] == "added_fact"]
    for row in added.itertuples():
        words = json.loads(row.altered_words)
        missing = [word for word in words if word.lower() not in _lower_words(row.context)]
        assert missing, (row.id, words)


def test_claims_same_seed_same_frame() -> None:
    first = generate_claims(40, seed=7)
    second = generate_claims(40, seed=7)
    pd.testing.assert_frame_equal(first, second)


def test_claims_other_seed_differs() -> None:
    first = generate_claims(40, seed=7)
    second = generate_claims(40, seed=8)
    assert not first["claim"].equals(second["claim"])


def test_claims_rejects_zero_rows() -> None:
    with pytest.raises(ValueError, match="n_rows must be at least 1"):
        generate_claims(0)
