"""Tests of ``halluscope evaluate`` on small labelled files with a tiny random Llama."""

from __future__ import annotations

import json

import pytest

from halluscope.cli import main

CONTEXT = "The bridge opened in Lyon in 1998 and has 12 arches."
SUMMARIES = [
    ("The bridge opened in Paris in 1999 .", [0, 0, 0, 0, 1, 0, 1, 0]),
    ("The bridge has 12 arches .", [0, 0, 0, 0, 0, 0]),
    ("It has 40 arches in Paris .", [0, 0, 1, 0, 0, 1, 0]),
]


def _write_xsum(path):
    rows = [
        {"source": CONTEXT, "summary": summary, "words": summary.split(), "word_labels": labels}
        for summary, labels in SUMMARIES
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_evaluate_trains_and_writes_metrics(tiny_llama_dir, tmp_path, capsys):
    test_file = _write_xsum(tmp_path / "tconvs2s.jsonl")
    train_file = _write_xsum(tmp_path / "berts2s.jsonl")
    output = tmp_path / "results.json"

    status = main(
        [
            "evaluate",
            str(test_file),
            "--dataset",
            "xsum",
            "--model",
            str(tiny_llama_dir),
            "--train-on",
            str(train_file),
            "--detector-dir",
            str(tmp_path / "detectors"),
            "--window",
            "2",
            "-o",
            str(output),
        ]
    )

    assert status == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| detector | word AUROC |")
    assert "| unsupported_word | 1.000 |" in printed
    assert (tmp_path / "detectors" / "lookback_lens.json").is_file()
    assert (tmp_path / "detectors" / "token_classifier" / "detector.json").is_file()
    document = json.loads(output.read_text())
    names = [row["detector"] for row in document["detectors"]]
    assert names == [
        "high_entropy",
        "low_logprob",
        "low_lookback",
        "unsupported_word",
        "lookback_lens",
        "stacked_ensemble",
        "token_classifier",
    ]
    classifier = document["detectors"][6]
    assert classifier["counts"]["words"] == 21
    assert 0.0 <= classifier["metrics"]["word_auroc"] <= 1.0
    assert classifier["metrics"]["response_ece"] is not None
    assert document["responses"] == 3
    unsupported = document["detectors"][3]
    assert unsupported["metrics"]["word_auroc"] == 1.0
    assert unsupported["counts"]["words"] == 21


def test_evaluate_reuses_saved_detector(tiny_llama_dir, tmp_path, capsys):
    data = _write_xsum(tmp_path / "x.jsonl")
    common = ["--dataset", "xsum", "--model", str(tiny_llama_dir), "--window", "2"]
    main(
        ["evaluate", str(data), *common, "--detectors", "lookback_lens", "--train-on", str(data)]
        + ["--detector-dir", str(tmp_path / "saved")]
    )
    capsys.readouterr()

    status = main(
        ["evaluate", str(data), *common, "--detectors", "low_logprob"]
        + ["--trained", str(tmp_path / "saved" / "lookback_lens.json")]
    )

    assert status == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split("|")[1].strip() for row in rows[2:]] == ["low_logprob", "lookback_lens"]


def test_evaluate_trained_name_needs_training_data(tiny_llama_dir, tmp_path, capsys):
    data = _write_xsum(tmp_path / "x.jsonl")

    status = main(
        ["evaluate", str(data), "--dataset", "xsum", "--model", str(tiny_llama_dir)]
        + ["--detectors", "lookback_lens"]
    )

    assert status == 2
    assert "must be trained first" in capsys.readouterr().err


def test_evaluate_reports_bad_row(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"source": "a", "summary": "b c", "words": ["b"], "word_labels": [0]}\n')

    status = main(["evaluate", str(data), "--dataset", "xsum"])

    assert status == 2
    assert "bad.jsonl line 1: 'words' is not the summary" in capsys.readouterr().err


def test_evaluate_reuses_saved_token_classifier(tiny_llama_dir, tmp_path, capsys):
    data = _write_xsum(tmp_path / "x.jsonl")
    common = ["--dataset", "xsum", "--model", str(tiny_llama_dir)]
    main(
        ["evaluate", str(data), *common, "--detectors", "token_classifier", "--train-on", str(data)]
        + ["--detector-dir", str(tmp_path / "saved"), "-o", str(tmp_path / "first.json")]
    )
    capsys.readouterr()

    status = main(
        ["evaluate", str(data), *common, "--detectors", "low_logprob"]
        + ["--trained", str(tmp_path / "saved" / "token_classifier")]
        + ["-o", str(tmp_path / "second.json")]
    )

    assert status == 0
    first = json.loads((tmp_path / "first.json").read_text())["detectors"][0]
    second = json.loads((tmp_path / "second.json").read_text())["detectors"]
    assert [row["detector"] for row in second] == ["low_logprob", "token_classifier"]
    assert second[1]["metrics"]["word_auroc"] == pytest.approx(first["metrics"]["word_auroc"])
