"""Shared test settings: offline, a temporary run store, and paths to shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The converted SmolLM2 weights are cached in the (git-ignored) checkout, so the
# GGUF conversion runs once per checkout rather than once per test.
os.environ.setdefault("HALLUSCOPE_CACHE", str(REPO_ROOT / "test-artifacts" / "cache"))


@pytest.fixture
def store_home(tmp_path, monkeypatch) -> Path:
    """A fresh run store folder, also set as HALLUSCOPE_HOME."""
    home = tmp_path / "halluscope-home"
    monkeypatch.setenv("HALLUSCOPE_HOME", str(home))
    return home


@pytest.fixture
def shared_data():
    """Return a function mapping path parts to a path under the shared labelled data.

    The test is skipped when that data is absent (a checkout without ../shared).
    """

    def locate(*parts: str) -> Path:
        path = SHARED_DATA.joinpath(*parts)
        if not path.exists():
            pytest.skip(f"shared labelled data not found at {path}")
        return path

    return locate


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A random 2-layer Llama with the SmolLM2 tokenizer and chat template, as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from halluscope.models import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
