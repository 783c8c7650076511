"""Tests of the loaders of labelled hallucination data."""

from __future__ import annotations

import json

import pytest

from halluscope.evaluate.datasets import (
    DIALOGUE_QUESTION,
    DatasetError,
    faithdial_label,
    load_dataset,
    load_faithdial,
    load_halueval,
    load_xsum,
)


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _xsum_row(summary="Paris hosts the games .", labels=(1, 0, 0, 0, 0)):
    return {
        "id": "BERTS2S-1",
        "source": "The games are in Paris.",
        "summary": summary,
        "words": summary.split(),
        "word_labels": list(labels),
    }


def test_load_xsum_reads_word_labels(tmp_path):
    path = _write_jsonl(tmp_path / "berts2s.jsonl", [_xsum_row(), _xsum_row(labels=(0,) * 5)])

    dataset = load_xsum(path)

    assert len(dataset) == 2
    first, second = dataset.records
    assert first.word_labels == (1, 0, 0, 0, 0)
    assert first.label == 1
    assert second.label == 0
    assert first.context == "The games are in Paris."
    assert first.question is None
    assert first.row == 1
    assert dataset.files == ("berts2s.jsonl",)


def test_load_xsum_limit(tmp_path):
    path = _write_jsonl(tmp_path / "x.jsonl", [_xsum_row()] * 3)

    assert len(load_xsum(path, limit=2)) == 2


def test_load_xsum_rejects_misaligned_words(tmp_path):
    row = _xsum_row()
    row["words"] = ["Paris", "hosts"]
    path = _write_jsonl(tmp_path / "bad.jsonl", [_xsum_row(), row])

    with pytest.raises(DatasetError, match=r"bad.jsonl line 2: 'words' is not the summary"):
        load_xsum(path)


def test_load_xsum_rejects_label_count(tmp_path):
    path = _write_jsonl(tmp_path / "bad.jsonl", [_xsum_row(labels=(1, 0))])

    with pytest.raises(DatasetError, match="line 1: 2 word_labels for 5 words"):
        load_xsum(path)


def test_load_xsum_rejects_invalid_json(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_xsum_row()) + "\n{oops\n", encoding="utf-8")

    with pytest.raises(DatasetError, match="bad.jsonl line 2: invalid JSON"):
        load_xsum(path)


def test_load_xsum_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="file not found"):
        load_xsum(tmp_path / "absent.jsonl")


def test_load_halueval_makes_pairs(tmp_path):
    row = {
        "knowledge": "Delhi is the head office.",
        "question": "Where is the head office?",
        "right_answer": "Delhi",
        "hallucinated_answer": "Mumbai",
    }
    path = _write_jsonl(tmp_path / "qa.jsonl", [row, row])

    dataset = load_halueval(path, limit=1)

    assert [record.response for record in dataset.records] == ["Delhi", "Mumbai"]
    assert [record.label for record in dataset.records] == [0, 1]
    assert dataset.records[0].pair_id == dataset.records[1].pair_id == "qa.jsonl:1"
    assert dataset.records[0].question == "Where is the head office?"


def test_load_halueval_names_missing_field(tmp_path):
    path = _write_jsonl(tmp_path / "qa.jsonl", [{"knowledge": "k", "question": "q"}])

    with pytest.raises(DatasetError, match="qa.jsonl line 1: the field 'right_answer' is missing"):
        load_halueval(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Hallucination", 1),
        ("Partial Hallucination", 1),
        ("Entailment", 0),
        ("entailment,hallucination", 1),
        ("entailment. uncooperative", 0),
        ("hallucinated", 1),
        ("Generic", "generic"),
        ("generic", "generic"),
        ("Uncooperative", "uncooperative"),
        ("", "unlabelled"),
    ],
)
def test_faithdial_label_mapping(value, expected):
    assert faithdial_label(value) == expected


def test_faithdial_label_rejects_unknown():
    with pytest.raises(ValueError, match="unknown BEGIN label 'Contradiction'"):
        faithdial_label("Contradiction")


def _write_gold_csv(path):
    path.write_text(
        "evidence,history,response,BEGIN,VRM\n"
        'Cats purr.,"Do cats purr?",Yes they purr.,Entailment,x\n'
        "Cats purr.,,Cats bark loudly.,Hallucination,x\n"
        "Cats purr.,hi,Nice.,Generic,x\n"
        "Cats purr.,hi,Cats purr at night.,Partial Hallucination,x\n",
        encoding="utf-8",
    )
    return path


def test_load_faithdial_gold_layout(tmp_path):
    path = _write_gold_csv(tmp_path / "wow.csv")

    dataset = load_faithdial(path)

    assert [record.label for record in dataset.records] == [0, 1, 1]
    assert dataset.dropped == {"generic": 1}
    assert dataset.records[0].question == "Do cats purr?"
    assert dataset.records[1].question == DIALOGUE_QUESTION
    assert dataset.records[2].row == 4


def test_load_faithdial_gpt2_layout_from_folder(tmp_path):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "gpt2_wow.csv").write_text(
        "knowledge,history,gpt2,begin_label,vrm_label\n"
        "Blue is a colour.,,Blue is a fruit.,hallucination,x\n"
        "Blue is a colour.,,Blue is a colour.,entailment,x\n",
        encoding="utf-8",
    )

    dataset = load_dataset("faithdial", folder)

    assert [record.label for record in dataset.records] == [1, 0]
    assert dataset.files == ("gpt2/gpt2_wow.csv",)


def test_load_faithdial_names_bad_label_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "evidence,history,response,BEGIN\nA.,h,r.,Entailment\nA.,h,r.,Maybe\n", encoding="utf-8"
    )

    with pytest.raises(DatasetError, match=r"bad.csv row 2 \(line 3\), column 'BEGIN'"):
        load_faithdial(path)


def test_load_faithdial_rejects_unknown_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")

    with pytest.raises(DatasetError, match=r"other.csv: expected the columns"):
        load_faithdial(path)


def test_shared_data_loads(shared_data):
    xsum = load_xsum(shared_data("xsum-token-labels", "berts2s.jsonl"))
    halueval = load_halueval(shared_data("halueval-qa", "qa.jsonl"))
    faithdial = load_faithdial(shared_data("faithdial-audit"))

    assert len(xsum) == 500
    assert len(halueval) == 1000
    assert len(faithdial.files) == 6
    assert faithdial.dropped["generic"] > 0
    assert {record.label for record in faithdial.records} == {0, 1}
