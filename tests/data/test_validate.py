"""Tests for schema guessing and for prepare_classification / prepare_generation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from halluscope.data import (
    FAITHDIAL_BEGIN_LABEL_MAP,
    ClassificationSchema,
    DataValidationError,
    GenerationSchema,
    LoadedTable,
    guess_classification_schema,
    guess_generation_schema,
    prepare_classification,
    prepare_generation,
    read_table,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FAITHDIAL_GOLD = SHARED_DATA / "faithdial-audit" / "gold"
FAITHDIAL_KEPT = {"Entailment": "supported", "Hallucination": "hallucinated"}
FAITHDIAL_KEPT["Partial Hallucination"] = "hallucinated"

SCHEMA = ClassificationSchema(text="text", label="label")


def _csv_table(tmp_path: Path, content: str, name: str = "data.csv") -> LoadedTable:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return read_table(path)


def _jsonl_table(tmp_path: Path, rows: list[dict], name: str = "data.jsonl") -> LoadedTable:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return read_table(path)


# Schema guessing -------------------------------------------------------------------


def test_guess_faithdial_columns() -> None:
    frame = pd.DataFrame(
        {
            "evidence": ["A long passage of evidence."],
            "history": ["What do you know?"],
            "response": ["A response."],
            "BEGIN": ["Entailment"],
            "VRM": ["Edification"],
        }
    )

    schema = guess_classification_schema(frame)

    assert schema.text == "evidence"
    assert schema.text_pair == "response"
    assert schema.label == "BEGIN"


def test_guess_premise_hypothesis() -> None:
    frame = pd.DataFrame({"hypothesis": ["h"], "Premise": ["p"], "Gold Label": ["entailment"]})

    schema = guess_classification_schema(frame)

    assert schema == ClassificationSchema(
        text="Premise", label="Gold Label", text_pair="hypothesis"
    )


def test_guess_single_text_column() -> None:
    frame = pd.DataFrame({"id": [1, 2], "sentence": ["a", "b"], "labels": [0, 1]})

    schema = guess_classification_schema(frame)

    assert schema == ClassificationSchema(text="sentence", label="labels")


def test_guess_by_content_longer_is_text() -> None:
    passages = [
        f"Passage number {index} tells a long story about topic {index}." for index in range(8)
    ]
    claims = [f"Claim {index} about the topic." for index in range(8)]
    frame = pd.DataFrame(
        {
            "col_a": claims,
            "col_b": passages,
            "col_c": ["yes", "no"] * 4,
            "col_d": [f"id{index}" for index in range(8)],
        }
    )

    schema = guess_classification_schema(frame)

    assert schema.text == "col_b"
    assert schema.text_pair == "col_a"
    assert schema.label == "col_c"


def test_guess_fails_lists_columns() -> None:
    frame = pd.DataFrame({"alpha": [f"unique value {index}" for index in range(30)]})

    with pytest.raises(DataValidationError) as caught:
        guess_classification_schema(frame)

    assert "'alpha'" in str(caught.value)
    assert "label" in str(caught.value)


def test_guess_generation_halueval_columns() -> None:
    frame = pd.DataFrame(
        {"knowledge": ["k"], "question": ["q"], "right_answer": ["r"], "hallucinated_answer": ["h"]}
    )

    schema = guess_generation_schema(frame)

    assert schema == GenerationSchema(prompt="question", answer="right_answer", context="knowledge")


def test_guess_generation_source_as_prompt() -> None:
    frame = pd.DataFrame({"source": ["article"], "summary": ["short"]})

    schema = guess_generation_schema(frame)

    assert schema == GenerationSchema(prompt="source", answer="summary", context=None)


def test_schema_rejects_reused_column() -> None:
    with pytest.raises(ValueError, match="both name column 'text'"):
        ClassificationSchema(text="text", label="label", text_pair="text")


# Labels ----------------------------------------------------------------------------


def test_words_sorted_and_trimmed(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na, supported \nb,hallucinated\nc,supported\n")

    data = prepare_classification(table, SCHEMA)

    assert data.label_names == ("hallucinated", "supported")
    assert data.labels == (1, 0, 1)
    assert data.row_numbers == (1, 2, 3)
    assert data.dropped == 0


def test_label_map_trims_whitespace(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na, supported \nb,hallucinated \nc,other\n")
    label_map = {"supported": "supported", " hallucinated": "hallucinated"}

    data = prepare_classification(table, SCHEMA, label_map=label_map)

    assert data.label_names == ("supported", "hallucinated")
    assert data.labels == (0, 1)
    assert data.texts == ("a", "b")
    assert data.row_numbers == (1, 2)
    assert data.dropped == 1
    assert "'other' 1" in data.warnings[0]


def test_integer_labels_as_text(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,1\nb,0\nc,01\nd, 0 \n")

    data = prepare_classification(table, SCHEMA)

    assert data.label_names == ("0", "1")
    assert data.labels == (1, 0, 1, 0)
    assert "'01', '1' as 1" in data.warnings[0]


def test_integer_labels_keep_numeric_order(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,10\nb,2\nc,10\n")

    data = prepare_classification(table, SCHEMA)

    assert data.label_names == ("2", "10")
    assert data.labels == (1, 0, 1)
    assert "10 -> 1" in data.warnings[0]


def test_json_integer_and_boolean_labels(tmp_path: Path) -> None:
    integers = _jsonl_table(tmp_path, [{"text": "a", "label": 1}, {"text": "b", "label": 0}])
    booleans = _jsonl_table(
        tmp_path, [{"text": "a", "label": True}, {"text": "b", "label": False}], "bool.jsonl"
    )

    integer_data = prepare_classification(integers, SCHEMA)
    boolean_data = prepare_classification(booleans, SCHEMA)

    assert integer_data.label_names == ("0", "1")
    assert integer_data.labels == (1, 0)
    assert boolean_data.label_names == ("false", "true")
    assert boolean_data.labels == (1, 0)


def test_mixed_label_types_json(tmp_path: Path) -> None:
    rows = [
        {"text": "a", "label": 1},
        {"text": "b", "label": "1"},
        {"text": "c", "label": 0},
        {"text": "d", "label": 0.5},
    ]
    table = _jsonl_table(tmp_path, rows, "mixed.jsonl")

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, SCHEMA)

    message = str(caught.value)
    assert "mixed.jsonl" in message
    assert "column 'label'" in message
    assert "mixes label types" in message
    assert "but not in row 2" in message
    assert caught.value.rows == (2,)
    assert caught.value.value == "1"


def test_mixed_numbers_and_words_csv(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,0\nb,1\nc,yes\nd,1\ne,no\n", "words.csv")

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, SCHEMA)

    assert caught.value.rows == (3, 5)
    assert caught.value.value == "yes"
    assert "rows 3, 5" in str(caught.value)


def test_fractional_label_rejected(tmp_path: Path) -> None:
    rows = [{"text": "a", "label": 0}, {"text": "b", "label": 0.5}, {"text": "c", "label": 1}]
    table = _jsonl_table(tmp_path, rows)

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, SCHEMA)

    assert "not whole numbers" in str(caught.value)
    assert "row 2;" in str(caught.value)
    assert caught.value.value == 0.5


def test_blank_label_rejected(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label,note\na,1,x\nb,  ,y\nc,0,z\n", "blank.csv")

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, SCHEMA)

    assert "blank.csv: column 'label' has empty labels in 1 row: row 2." in str(caught.value)
    assert caught.value.rows == (2,)


def test_single_class_rejected(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,yes\nb,yes\n", "one.csv")

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, SCHEMA)

    message = str(caught.value)
    assert "one.csv" in message
    assert "only one class, 'yes'" in message
    assert "at least two classes" in message


def test_label_map_keeps_nothing(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,x\nb,y\n")

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, SCHEMA, label_map={"z": "zed", "w": "double"})

    assert "no row whose label the label map keeps" in str(caught.value)
    assert "'x'" in str(caught.value)


def test_label_map_rejects_bad_value(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,x\nb,y\n")

    with pytest.raises(ValueError, match="label_map"):
        prepare_classification(table, SCHEMA, label_map={"x": 1})


def test_case_only_labels_warn(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,Generic\nb,generic\nc,other\n")

    data = prepare_classification(table, SCHEMA)

    assert data.label_names == ("Generic", "generic", "other")
    assert "'Generic' and 'generic'" in data.warnings[0]


# Text cells ------------------------------------------------------------------------


def test_missing_column_lists_available(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "sentence,label\na,1\nb,0\n", "cols.csv")

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, SCHEMA)

    message = str(caught.value)
    assert "cols.csv" in message
    assert "column 'text' not found" in message
    assert "'sentence', 'label'" in message
    assert caught.value.column == "text"


def test_blank_text_rejected(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,1\n   ,0\nc,1\n,0\n", "texts.csv")

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, SCHEMA)

    message = str(caught.value)
    assert "texts.csv" in message
    assert "column 'text' has 2 empty cells: rows 2, 4" in message
    assert caught.value.column == "text"
    assert caught.value.rows == (2, 4)


def test_blank_text_pair_rejected(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "context,claim,label\nc1,a,1\nc2,,0\n")
    schema = ClassificationSchema(text="context", label="label", text_pair="claim")

    with pytest.raises(DataValidationError) as caught:
        prepare_classification(table, schema)

    assert caught.value.column == "claim"
    assert caught.value.rows == (2,)


def test_blank_text_in_dropped_row_ignored(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,keep\n,drop\nc,other\n")

    data = prepare_classification(table, SCHEMA, label_map={"keep": "keep", "other": "other"})

    assert data.texts == ("a", "c")
    assert data.row_numbers == (1, 3)


def test_long_cell_truncated_with_warning(tmp_path: Path) -> None:
    long_text = "word " * 40_000
    table = _csv_table(tmp_path, f"text,label\nshort,1\n{long_text},0\n")

    data = prepare_classification(table, SCHEMA, max_chars=20_000)

    assert len(long_text) == 200_000
    assert len(data.texts[1]) == 20_000
    assert data.texts[1] == long_text[:20_000]
    assert data.texts[0] == "short"
    assert "row 2)" in data.warnings[0]
    assert "20000 characters" in data.warnings[0]


def test_numbers_in_text_column_converted(tmp_path: Path) -> None:
    rows = [{"text": 42, "label": "a"}, {"text": "words", "label": "b"}]
    table = _jsonl_table(tmp_path, rows)

    data = prepare_classification(table, SCHEMA)

    assert data.texts == ("42", "words")
    assert "row 1;" in data.warnings[0]


def test_to_frame_columns(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "context,claim,label\nc1,a,yes\nc2,b,no\n")
    schema = ClassificationSchema(text="context", label="label", text_pair="claim")

    frame = prepare_classification(table, schema).to_frame()

    assert list(frame.columns) == ["row", "text", "text_pair", "label", "label_name"]
    assert frame["label_name"].tolist() == ["yes", "no"]
    assert frame["label"].tolist() == [1, 0]


def test_max_chars_must_be_positive(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "text,label\na,1\nb,0\n")

    with pytest.raises(ValueError, match="max_chars"):
        prepare_classification(table, SCHEMA, max_chars=0)


# Generation ------------------------------------------------------------------------


def test_generation_prompts_answers(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "question,answer,context\nWho?,Ann,doc one\nWhen?,,doc two\n")
    schema = GenerationSchema(prompt="question", answer="answer", context="context")

    data = prepare_generation(table, schema)

    assert data.prompts == ("Who?", "When?")
    assert data.answers == ("Ann", "")
    assert data.contexts == ("doc one", "doc two")
    assert data.row_numbers == (1, 2)
    assert "Column 'answer' has 1 empty cell: row 2" in data.warnings[0]
    assert list(data.to_frame().columns) == ["row", "prompt", "answer", "context"]


def test_generation_blank_prompt_rejected(tmp_path: Path) -> None:
    table = _csv_table(tmp_path, "question,answer\nWho?,Ann\n ,Bob\n", "gen.csv")

    with pytest.raises(DataValidationError) as caught:
        prepare_generation(table, GenerationSchema(prompt="question", answer="answer"))

    assert "gen.csv: column 'question' has 1 empty cell: row 2." in str(caught.value)
    assert caught.value.rows == (2,)


# Real files ------------------------------------------------------------------------


@pytest.mark.skipif(
    not FAITHDIAL_GOLD.is_dir(), reason=f"FaithDial gold CSVs absent at {FAITHDIAL_GOLD}"
)
@pytest.mark.parametrize("name", ["cmu.csv", "topical.csv", "wow.csv"])
def test_faithdial_begin_map(name: str) -> None:
    path = FAITHDIAL_GOLD / name
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = raw[raw.apply(lambda column: column.str.strip() != "").any(axis=1)]
    begin = rows["BEGIN"].str.strip()
    expected_dropped = int((~begin.isin(FAITHDIAL_KEPT)).sum())
    expected_hallucinated = int(begin.map(FAITHDIAL_KEPT).eq("hallucinated").sum())

    table = read_table(path)
    schema = guess_classification_schema(table.frame)
    data = prepare_classification(table, schema, label_map=FAITHDIAL_BEGIN_LABEL_MAP)

    assert schema == ClassificationSchema(text="evidence", label="BEGIN", text_pair="response")
    assert data.label_names == ("supported", "hallucinated")
    assert data.dropped > 0
    assert data.dropped == expected_dropped
    assert len(data) == len(rows) - expected_dropped
    assert sum(data.labels) == expected_hallucinated
    assert data.text_pairs is not None
    assert data.row_numbers[0] == 1
