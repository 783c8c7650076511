"""Untrusted model folders and names: no pickle or remote code by default, no path escapes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import REPOSITORY_ROOT, make_completed_run, write_tiny_data

import halluscope.models.loading as loading
from dashboard.services import safe_file_name, save_upload
from halluscope.cli import main
from halluscope.models import (
    ModelNotFoundError,
    UnsafeModelError,
    load_sequence_classifier,
    load_tokenizer,
    resolve_model,
)
from halluscope.runs import RunStore, validate_run_id

ESCAPING_IDS = ["../outside", "..", "/etc/passwd", "a/b", "run/../../x", "RUN-ID", "ab", ""]


@pytest.fixture
def pickle_only_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model whose weights are a pickle ``pytorch_model.bin`` only."""
    from safetensors.torch import load_file

    folder = tmp_path / "pickle-model"
    shutil.copytree(tiny_model_dir, folder)
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")
    weights.unlink()
    return folder


# Pickle weights


def test_pickle_only_folder_rejected(pickle_only_dir: Path):
    with pytest.raises(UnsafeModelError) as raised:
        resolve_model(str(pickle_only_dir))

    message = str(raised.value)
    assert "pytorch_model.bin" in message
    assert "arbitrary code" in message
    assert "--allow-pickle" in message


def test_pickle_only_loader_rejected(pickle_only_dir: Path):
    with pytest.raises(UnsafeModelError):
        load_sequence_classifier(str(pickle_only_dir))


def test_pickle_only_loads_when_allowed(pickle_only_dir: Path, tiny_model_dir: Path):
    resolved = resolve_model(str(pickle_only_dir), allow_pickle=True)
    model = load_sequence_classifier(str(pickle_only_dir), allow_pickle=True)
    reference = load_sequence_classifier(str(tiny_model_dir))

    assert resolved.pickle_only is True
    assert resolve_model(str(tiny_model_dir)).pickle_only is False
    assert torch.equal(model.classifier.weight, reference.classifier.weight)


def test_cli_train_pickle_needs_flag(
    pickle_only_dir, home, tmp_path, capsys, caplog, keep_signal_handlers
):
    data = write_tiny_data(tmp_path / "data.csv")
    argv = ["train", "--model", str(pickle_only_dir), "--data", str(data),
            "--text-column", "text", "--label-column", "label", "--epochs", "1",
            "--home", str(home), "--json"]  # fmt: skip

    rejected = main(argv)
    rejected_err = capsys.readouterr().err
    allowed = main([*argv, "--allow-pickle"])
    allowed_out = capsys.readouterr().out

    assert rejected == 1
    assert "contains only pickle weights" in rejected_err
    assert "Traceback" not in rejected_err
    assert allowed == 0
    assert json.loads(allowed_out)["status"] == "completed"
    statuses = sorted(record.status for record in RunStore(home).list_runs())
    assert statuses == ["completed", "failed"]


# Remote code


def test_loaders_never_trust_remote_code(tiny_model_dir: Path, monkeypatch):
    calls: list[dict] = []

    def recorder(real):
        def record(*args, **kwargs):
            calls.append(kwargs)
            return real(*args, **kwargs)

        return record

    for name in ("AutoTokenizer", "AutoModelForSequenceClassification"):
        auto_class = getattr(loading, name)
        monkeypatch.setattr(
            auto_class, "from_pretrained", recorder(auto_class.from_pretrained), raising=True
        )

    load_tokenizer(str(tiny_model_dir))
    load_sequence_classifier(str(tiny_model_dir))

    assert len(calls) == 2
    for kwargs in calls:
        assert kwargs["trust_remote_code"] is False
    assert calls[1]["use_safetensors"] is True


def test_causal_loader_never_trusts_remote_code(tmp_path: Path, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "tiny-gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=64)).save_pretrained(
        folder
    )
    calls: list[dict] = []
    real = loading.AutoModelForCausalLM.from_pretrained

    def record(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(loading.AutoModelForCausalLM, "from_pretrained", record)

    loading.load_causal_lm(str(folder), device=torch.device("cpu"))

    assert [kwargs["trust_remote_code"] for kwargs in calls] == [False]


def test_source_never_enables_remote_code():
    enabled = re.compile(r"trust_remote_code\s*=\s*(?!False\b)")
    offenders = [
        f"{path.relative_to(REPOSITORY_ROOT)}:{number}"
        for folder in ("core", "dashboard")
        for path in sorted((REPOSITORY_ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if enabled.search(line)
    ]

    assert offenders == []


def test_custom_code_model_rejected(tiny_model_dir: Path, tmp_path: Path):
    folder = tmp_path / "custom-code"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="evil-net", auto_map={"AutoModel": "modeling_evil.EvilModel"})
    (folder / "config.json").write_text(json.dumps(config))

    with pytest.raises(UnsafeModelError) as raised:
        resolve_model(str(folder))

    assert "'evil-net'" in str(raised.value)
    assert "trust_remote_code" in str(raised.value)


def test_known_type_with_auto_map_uses_builtin(tiny_model_dir: Path, tmp_path: Path):
    folder = tmp_path / "bert-with-auto-map"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")

    model = load_sequence_classifier(str(folder))

    assert type(model).__name__ == "BertForSequenceClassification"


def test_hub_reference_needs_permission():
    with pytest.raises(ModelNotFoundError) as raised:
        resolve_model("hub:../../etc")

    assert "hub downloads are off" in str(raised.value)


# Names that could leave their folder


@pytest.mark.parametrize("run_id", ESCAPING_IDS)
def test_run_id_cannot_escape(run_id: str, store: RunStore):
    with pytest.raises(ValueError, match="Invalid run id"):
        validate_run_id(run_id)
    with pytest.raises(ValueError):
        store.run_dir(run_id)
    with pytest.raises(ValueError):
        store.get(run_id)


@pytest.mark.parametrize("run_id", ["../outside", "/etc/passwd"])
def test_cli_rejects_escaping_run_id(run_id, home, capsys, keep_signal_handlers):
    predicted = main(["predict", run_id, "--home", str(home)])
    predict_err = capsys.readouterr().err
    resumed = main(["train", "--resume", run_id, "--home", str(home)])
    resume_err = capsys.readouterr().err

    assert predicted == 2
    assert resumed == 2
    assert "Invalid run id" in predict_err
    assert "Invalid run id" in resume_err
    assert not (home / "outside").exists()


@pytest.mark.parametrize("name", ["../escape.json", "/tmp/escape.json", "sub/../../escape.json"])
def test_run_file_cannot_escape(name: str, store: RunStore, tiny_model_dir: Path):
    run_id = make_completed_run(store, tiny_model_dir)

    with pytest.raises(ValueError, match="inside the run folder"):
        store.write_json(run_id, name, {"escaped": True})

    assert not (store.runs_dir / "escape.json").exists()


def test_run_file_symlink_cannot_escape(store: RunStore, tiny_model_dir: Path, tmp_path: Path):
    run_id = make_completed_run(store, tiny_model_dir)
    outside = tmp_path / "secret.json"
    outside.write_text('{"secret": 1}')
    (store.run_dir(run_id) / "link.json").symlink_to(outside)

    with pytest.raises(ValueError, match="inside the run folder"):
        store.read_json(run_id, "link.json")


def test_run_name_is_not_a_path(store: RunStore):
    record = store.create_run(
        kind="classification", model="minilm", data="d.csv", config={}, name="../../evil"
    )

    assert record.name == "../../evil"
    assert store.run_dir(record.run_id).parent == store.runs_dir
    assert [path for path in store.home.parent.rglob("*") if "evil" in path.name] == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("/abs/path/data.csv", "data.csv"),
        ("..\\..\\windows\\data.csv", "data.csv"),
        ("..", "upload"),
        (".hidden.csv", "hidden.csv"),
    ],
)
def test_upload_name_cannot_escape(name: str, expected: str, tmp_path: Path):
    path = save_upload(tmp_path, name, b"text,label\na,b\n")

    assert safe_file_name(name) == expected
    assert path.parent == tmp_path / "uploads"
    assert path.name.endswith(f"-{expected}")
