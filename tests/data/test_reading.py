"""Tests for read_table: formats, encodings, delimiters and the errors for bad files."""

from __future__ import annotations

import codecs
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from halluscope.data import (
    DataError,
    DataFormatError,
    DataTooLargeError,
    format_rows,
    read_table,
)

FAITHDIAL_GOLD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "faithdial-audit"
FAITHDIAL_GOLD = FAITHDIAL_GOLD / "gold"


def _sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "claim": [
                "Paris is in France.",
                "The moon is made of cheese.",
                "Water boils at 100 C.",
            ],
            "label": ["01", "1", "0"],
        }
    )


# Round trips ------------------------------------------------------------------


def test_csv_round_trip_keeps_strings(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    _sample_frame().to_csv(path, index=False)

    table = read_table(path)

    assert table.format == "csv"
    assert table.delimiter == ","
    assert table.encoding == "utf-8"
    assert table.file_name == "claims.csv"
    assert table.columns == ("claim", "label")
    assert table.frame["label"].tolist() == ["01", "1", "0"]
    assert table.frame["claim"].tolist() == _sample_frame()["claim"].tolist()
    assert table.row_numbers == (1, 2, 3)
    assert table.warnings == ()


def test_tsv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "claims.tsv"
    frame = _sample_frame()
    frame.loc[0, "claim"] = "Paris, the capital, is in France."
    frame.to_csv(path, index=False, sep="\t")

    table = read_table(path)

    assert table.format == "tsv"
    assert table.delimiter == "\t"
    assert table.frame["claim"].iloc[0] == "Paris, the capital, is in France."
    assert table.frame["label"].tolist() == ["01", "1", "0"]


def test_jsonl_round_trip_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "claims.jsonl"
    frame = pd.DataFrame({"claim": ["a b", "c d"], "label": [0, 1], "score": [0.25, 0.75]})
    frame.to_json(path, orient="records", lines=True)

    table = read_table(path)

    assert table.format == "jsonl"
    assert table.frame["label"].tolist() == [0, 1]
    assert table.frame["score"].tolist() == [0.25, 0.75]
    assert table.frame["claim"].tolist() == ["a b", "c d"]
    assert table.line_numbers == (1, 2)


def test_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "claims.json"
    frame = pd.DataFrame({"claim": ["a b", "c d"], "label": [1, 0]})
    frame.to_json(path, orient="records")

    table = read_table(path)

    assert table.format == "json"
    assert table.frame["label"].tolist() == [1, 0]
    assert table.frame["claim"].tolist() == ["a b", "c d"]
    assert table.line_numbers is None
    assert table.file_line(0) is None


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "claims.parquet"
    frame = pd.DataFrame({"claim": ["a b", "c d", "e f"], "label": [1, 0, 1]})
    frame.to_parquet(path)

    table = read_table(path)

    assert table.format == "parquet"
    assert table.encoding is None
    assert table.frame["label"].tolist() == [1, 0, 1]
    assert table.frame["claim"].tolist() == ["a b", "c d", "e f"]


def test_parquet_stored_index_dropped(tmp_path: Path) -> None:
    path = tmp_path / "filtered.parquet"
    frame = pd.DataFrame({"claim": ["a b", "c d", "e f"], "label": [1, 0, 1]})
    frame[frame["label"] == 1].to_parquet(path)

    table = read_table(path)

    assert table.columns == ("claim", "label")
    assert table.frame["claim"].tolist() == ["a b", "e f"]


def test_bytes_source_uses_file_name(tmp_path: Path) -> None:
    data = b"text,label\nhello,1\nworld,0\n"

    table = read_table(data, file_name="upload.csv")

    assert table.file_name == "upload.csv"
    assert table.frame["text"].tolist() == ["hello", "world"]


def test_bytes_source_requires_file_name() -> None:
    with pytest.raises(ValueError, match="file_name"):
        read_table(b"text,label\nhello,1\n")


# Encodings and delimiters -------------------------------------------------------


def test_utf8_bom_stripped_from_first_column(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(codecs.BOM_UTF8 + "text,label\ncafé,1\nthé,0\n".encode())

    table = read_table(path)

    assert table.encoding == "utf-8-sig"
    assert table.columns[0] == "text"
    assert "\ufeff" not in table.columns[0]
    assert table.frame["text"].tolist() == ["café", "thé"]


def test_utf16_le_with_accents(tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    path.write_bytes("text,label\ncafé,1\nnaïve,0\n".encode("utf-16"))

    table = read_table(path)

    assert table.encoding == "utf-16-le"
    assert table.columns == ("text", "label")
    assert table.frame["text"].tolist() == ["café", "naïve"]


def test_utf16_be_with_accents(tmp_path: Path) -> None:
    path = tmp_path / "utf16be.tsv"
    path.write_bytes(codecs.BOM_UTF16_BE + "text\tlabel\ncafé\t1\n".encode("utf-16-be"))

    table = read_table(path)

    assert table.encoding == "utf-16-be"
    assert table.frame["text"].tolist() == ["café"]


def test_cp1252_fallback_with_accents(tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes("text,label\ncafé crème,1\nrésumé – “quoted”,0\n".encode("cp1252"))

    table = read_table(path)

    assert table.encoding == "cp1252"
    assert table.frame["text"].tolist() == ["café crème", "résumé – “quoted”"]
    assert len(table.warnings) == 1
    assert "cp1252" in table.warnings[0]


def test_semicolon_delimiter_detected(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("text;label\nhello, world;1\nfoo, bar, baz;0\n", encoding="utf-8")

    table = read_table(path)

    assert table.delimiter == ";"
    assert table.frame["text"].tolist() == ["hello, world", "foo, bar, baz"]
    assert table.frame["label"].tolist() == ["1", "0"]


def test_pipe_delimiter_in_txt(tmp_path: Path) -> None:
    path = tmp_path / "pipe.txt"
    path.write_text("text|label\nhello; world|1\nfoo|0\n", encoding="utf-8")

    table = read_table(path)

    assert table.format == "txt"
    assert table.delimiter == "|"
    assert table.frame["text"].tolist() == ["hello; world", "foo"]


def test_single_column_file_warns(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("text\nfirst line\nsecond, with a comma\n", encoding="utf-8")

    table = read_table(path)

    assert table.columns == ("text",)
    assert table.frame["text"].tolist() == ["first line", "second, with a comma"]
    assert "single column" in table.warnings[0]


# Rows, lines and empty rows -----------------------------------------------------


def test_multiline_cell_file_line(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"first\nsecond\nthird",1\nplain,0\n', encoding="utf-8")

    table = read_table(path)

    assert table.frame["text"].iloc[0] == "first\nsecond\nthird"
    assert table.file_line(0) == 2
    assert table.file_line(1) == 5
    assert table.row_number(1) == 2


def test_empty_rows_dropped_keep_numbers(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("text,label\nhello,1\n,\n  ,\nworld,0\n", encoding="utf-8")

    table = read_table(path)

    assert table.frame["text"].tolist() == ["hello", "world"]
    assert table.row_numbers == (1, 4)
    assert table.file_line(1) == 5
    assert "Skipped 2 rows" in table.warnings[0]


def test_short_rows_padded_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("text,label,source\nhello,1,web\nworld,0\n", encoding="utf-8")

    table = read_table(path)

    assert table.frame["source"].tolist() == ["web", ""]
    assert "row 2" in table.warnings[0]


def test_blank_header_named_unnamed(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["1", "0"]}).to_csv(path)

    table = read_table(path)

    assert table.columns == ("Unnamed: 0", "text", "label")
    assert "Unnamed: 0" in table.warnings[0]


# Errors --------------------------------------------------------------------------


def test_error_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "nothing.csv"
    path.write_bytes(b"")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    assert "nothing.csv" in str(caught.value)
    assert "empty" in str(caught.value)
    assert caught.value.file_name == "nothing.csv"


def test_error_whitespace_only_file(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text("\n  \n\n", encoding="utf-8")

    with pytest.raises(DataFormatError, match=r"blank\.jsonl: the file is empty"):
        read_table(path)


def test_error_header_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("text,label\n", encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    message = str(caught.value)
    assert "header.csv" in message
    assert "no data rows" in message
    assert "text, label" in message


def test_error_binary_garbage_csv(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(random.Random(0).randbytes(4096))

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    message = str(caught.value)
    assert "garbage.csv" in message
    assert "not text" in message
    assert "UTF-8" in caught.value.fix


def test_error_binary_without_nul_bytes(tmp_path: Path) -> None:
    noise = bytes(byte for byte in random.Random(1).randbytes(8192) if byte != 0)
    path = tmp_path / "noise.csv"
    path.write_bytes(noise)

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    assert "noise.csv" in str(caught.value)


def test_error_zip_named_csv(tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(b"PK\x03\x04" + bytes(60))

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    assert "ZIP archive" in str(caught.value)
    assert "book.csv" in str(caught.value)


def test_error_json_object_not_list(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": [{"text": "a", "label": 1}]}), encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    message = str(caught.value)
    assert "wrapped.json" in message
    assert "is an object" in message
    assert "list of objects" in message
    assert "'data'" in message


def test_error_json_invalid_syntax(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n{"text": "a"},\n{"text": }\n]', encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    assert "line 3" in str(caught.value)
    assert caught.value.line == 3


def test_error_ragged_row_names_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text('text,label\n"a\nb",1\nhello, world,0\nfine,1\n', encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    message = str(caught.value)
    assert "ragged.csv" in message
    assert "line 4" in message
    assert "data row 2" in message
    assert "3 fields" in message
    assert "header has 2" in message
    assert "'hello, world,0'" in message
    assert caught.value.line == 4
    assert caught.value.rows == (2,)
    assert "double quotes" in caught.value.fix


def test_error_ragged_rows_listed(tmp_path: Path) -> None:
    lines = ["text,label"] + [f"row {index}, extra,1" for index in range(15)]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    assert "15 rows have more fields" in str(caught.value)
    assert "and 5 more" in str(caught.value)
    assert len(caught.value.rows) == 15


def test_error_unclosed_quote(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('text,label\nfine,1\n"never closed,0\nmore,1\n', encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    assert "line 3" in str(caught.value)
    assert "never closed" in str(caught.value)


def test_error_duplicate_columns(tmp_path: Path) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text("text,label,text\na,1,b\n", encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    message = str(caught.value)
    assert "dupes.csv" in message
    assert "'text' at positions 1, 3" in message
    assert caught.value.column == "text"


def test_error_duplicate_json_keys(tmp_path: Path) -> None:
    path = tmp_path / "dupes.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "text": "c"}\n', encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    assert "line 2" in str(caught.value)
    assert caught.value.column == "text"


def test_error_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    message = str(caught.value)
    assert "sheet.xlsx" in message
    assert "'.xlsx'" in message
    assert ".csv" in message
    assert ".parquet" in message
    assert "Excel" in message


def test_error_invalid_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0\n{"text": "c", "label": 1}\n',
        encoding="utf-8",
    )

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    message = str(caught.value)
    assert "bad.jsonl" in message
    assert "line 3" in message
    assert '"label": 0' in message
    assert caught.value.line == 3
    assert caught.value.rows == (2,)


def test_error_jsonl_row_not_object(tmp_path: Path) -> None:
    path = tmp_path / "lists.jsonl"
    path.write_text('{"text": "a"}\n["b", 1]\n', encoding="utf-8")

    with pytest.raises(DataFormatError) as caught:
        read_table(path)

    assert "row 2 (line 2)" in str(caught.value)
    assert caught.value.value == ["b", 1]


def test_error_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("text,label\n" + "x,1\n" * 100, encoding="utf-8")

    with pytest.raises(DataTooLargeError) as caught:
        read_table(path, max_bytes=100)

    message = str(caught.value)
    assert "big.csv" in message
    assert "411 bytes" in message
    assert "100 bytes limit" in message
    assert "split" in message


def test_error_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "absent.csv")


def test_error_parquet_bytes_invalid() -> None:
    with pytest.raises(DataFormatError, match=r"fake\.parquet: the file is not a Parquet file"):
        read_table(b"text,label\na,1\n", file_name="fake.parquet")


def test_format_rows_limits_list() -> None:
    assert format_rows([7]) == "row 7"
    assert format_rows(range(1, 4)) == "rows 1, 2, 3"
    assert format_rows(range(1, 13)) == "rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more"
    assert format_rows([3, 4], noun="line") == "lines 3, 4"


# Real files ----------------------------------------------------------------------


@pytest.mark.skipif(
    not FAITHDIAL_GOLD.is_dir(), reason=f"FaithDial gold CSVs absent at {FAITHDIAL_GOLD}"
)
@pytest.mark.parametrize("name", ["cmu.csv", "topical.csv", "wow.csv"])
def test_faithdial_matches_pandas(name: str) -> None:
    path = FAITHDIAL_GOLD / name
    expected = pd.read_csv(path, dtype=str, keep_default_na=False)
    not_empty = expected.apply(lambda column: column.str.strip() != "").any(axis=1)

    table = read_table(path)

    assert table.columns == tuple(expected.columns)
    assert len(table.frame) == int(not_empty.sum())
    assert table.frame.equals(expected[not_empty].reset_index(drop=True))
    assert list(table.row_numbers) == [index + 1 for index in expected.index[not_empty]]
