"""Integration test of the one-time GGUF to safetensors conversion of SmolLM2."""

from __future__ import annotations

import pytest
import torch

from halluscope.models import gguf_cache, load_causal_lm, load_tokenizer, resolve_model

pytestmark = pytest.mark.integration


def test_smollm2_converted_once_and_answers(monkeypatch):
    folder = resolve_model("smollm2-135m").path

    def fail_convert(*args, **kwargs):
        raise AssertionError("the cached conversion should have been reused")

    monkeypatch.setattr(gguf_cache, "_convert", fail_convert)
    assert resolve_model("smollm2-135m").path == folder

    tokenizer = load_tokenizer("smollm2-135m")
    model = load_causal_lm("smollm2-135m")
    assert model.config._attn_implementation == "eager"
    assert model.dtype == torch.float32

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=10, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    assert "Paris" in answer
