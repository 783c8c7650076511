"""Tests of ``halluscope analyze`` on a tiny random Llama with the SmolLM2 tokenizer."""

from __future__ import annotations

import json

from halluscope.cli import main


def test_analyze_writes_word_scores(tiny_llama_dir, tmp_path, capsys):
    rows = [
        {
            "source": "the bridge over the river has 12 arches and was opened in may .",
            "summary": "the bridge has 14 arches .",
            "words": ["the", "bridge", "has", "14", "arches", "."],
        },
        {
            "source": "a ship named orla sailed from the port in june .",
            "summary": "orla sailed in june .",
            "words": ["orla", "sailed", "in", "june", "."],
        },
    ]
    data = tmp_path / "summaries.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    output = tmp_path / "scores.jsonl"

    status = main(["analyze", str(data), "--model", str(tiny_llama_dir), "-o", str(output)])

    assert status == 0
    results = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(results) == 2
    first_words = [word["word"] for word in results[0]["words"]]
    assert first_words == rows[0]["words"]
    assert results[0]["fields"]["words"] == rows[0]["words"]
    unsupported = {w["word"]: w["scores"]["unsupported_word"] for w in results[0]["words"]}
    assert unsupported["14"] == 1.0
    assert unsupported["bridge"] == 0.0
    assert "rows" in capsys.readouterr().out


def test_analyze_rejects_bad_limit(tmp_path, capsys):
    data = tmp_path / "empty.jsonl"
    data.write_text('{"summary": "x"}\n', encoding="utf-8")

    status = main(["analyze", str(data), "--limit", "0", "-o", str(tmp_path / "out.jsonl")])

    assert status != 0
    assert "--limit must be at least 1" in capsys.readouterr().err
