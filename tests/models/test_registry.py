"""Tests of model resolution: bundled names, local folders, hub ids, unsafe folders."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from halluscope.models import (
    ModelNotFoundError,
    UnsafeModelError,
    available_models,
    load_sequence_classifier,
    resolve_model,
)


def tiny_bert_folder(path, *, safetensors: bool = True):
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    if safetensors:
        model.save_pretrained(path)
    else:
        config.save_pretrained(path)
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return path


def test_bundled_names_listed():
    assert available_models() == ["minilm", "smollm2-135m"]


def test_minilm_resolves_to_package_folder():
    resolved = resolve_model("minilm")

    assert resolved.family == "encoder"
    assert resolved.path.endswith("model")
    assert not resolved.is_hub


def test_unknown_name_lists_available():
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model("gpt-17")

    assert "Unknown model 'gpt-17'" in str(error.value)
    assert "minilm, smollm2-135m" in str(error.value)


def test_hub_id_needs_permission():
    with pytest.raises(ModelNotFoundError, match="hub downloads are off"):
        resolve_model("hub:org/model")

    resolved = resolve_model("hub:org/model", allow_hub=True)
    assert resolved.is_hub
    assert resolved.path == "org/model"


def test_local_folder_resolves(tmp_path):
    folder = tiny_bert_folder(tmp_path)

    resolved = resolve_model(str(folder))

    assert resolved.path == str(folder.resolve())


def test_pickle_only_folder_rejected(tmp_path):
    folder = tiny_bert_folder(tmp_path, safetensors=False)

    with pytest.raises(UnsafeModelError, match="pytorch_model.bin"):
        resolve_model(str(folder))


def test_folder_without_config_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_eager_attention_returns_weights(tmp_path):
    folder = tiny_bert_folder(tmp_path)
    model = load_sequence_classifier(str(folder), attention="eager")

    output = model(input_ids=torch.tensor([[2, 5, 7, 3]]), output_attentions=True)

    assert model.config._attn_implementation == "eager"
    assert output.attentions[0].shape == (1, 2, 4, 4)
