"""Tests of the context-question-answer demo set."""

from __future__ import annotations

import pandas as pd
import pytest

from halluscope.demo import REFUSAL_ANSWER, generate_qa
from halluscope.demo.qa import ANSWER_TYPES, QA_COLUMNS


@pytest.fixture(scope="module")
def qa() -> pd.DataFrame:
    return generate_qa(400, seed=0)


def test_qa_columns_and_ids(qa: pd.DataFrame) -> None:
    assert list(qa.columns) == list(QA_COLUMNS)
    assert qa["id"].iloc[0] == "q0001"
    assert qa["id"].iloc[-1] == "q0400"
    assert qa["answerable"].dtype == bool


def test_qa_unanswerable_share(qa: pd.DataFrame) -> None:
    assert (~qa["answerable"]).sum() == 80


def test_qa_refusal_rows(qa: pd.DataFrame) -> None:
    unanswerable = qa[~qa["answerable"]]
    assert (unanswerable["answer"] == REFUSAL_ANSWER).all()
    assert (unanswerable["answer_type"] == "refusal").all()
    assert REFUSAL_ANSWER == "The context does not say."


def test_qa_answers_in_context(qa: pd.DataFrame) -> None:
    for row in qa[qa["answerable"]].itertuples():
        assert row.answer in row.context, (row.id, row.answer)
        assert row.answer != REFUSAL_ANSWER, row.id


def test_qa_answer_types_all_present(qa: pd.DataFrame) -> None:
    counts = qa["answer_type"].value_counts()
    assert set(counts.index) == set(ANSWER_TYPES)
    for answer_type in ("number", "name", "date", "place"):
        assert counts[answer_type] >= 40, answer_type


def test_qa_answers_short(qa: pd.DataFrame) -> None:
    words = qa["answer"].str.split().str.len()
    assert words.max() <= 5


def test_qa_number_answers_numeric(qa: pd.DataFrame) -> None:
    numbers = qa[qa["answer_type"] == "number"]["answer"]
    assert numbers.str.replace(",", "").str.isdigit().all()


def test_qa_questions_end_with_mark(qa: pd.DataFrame) -> None:
    assert qa["question"].str.endswith("?").all()
    assert not qa["question"].str.contains("{", regex=False).any()


def test_qa_no_duplicate_pairs(qa: pd.DataFrame) -> None:
    assert not qa.duplicated(subset=["context", "question"]).any()


def test_qa_same_seed_same_frame() -> None:
    pd.testing.assert_frame_equal(generate_qa(30, seed=2), generate_qa(30, seed=2))


def test_qa_small_count_rounding() -> None:
    frame = generate_qa(7, seed=1)
    assert (~frame["answerable"]).sum() == 1
    assert len(frame) == 7


def test_qa_rejects_zero_rows() -> None:
    with pytest.raises(ValueError, match="n_rows must be at least 1"):
        generate_qa(0)
