"""A tiny BERT classifier and the real MiniLM tokenizer for the inference tests."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerBase

from halluscope.models import load_tokenizer

LABELS = {0: "supported", 1: "hallucinated"}


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerBase:
    return load_tokenizer("minilm")


@pytest.fixture
def tiny_classifier(tokenizer) -> BertForSequenceClassification:
    """A randomly initialised 2-layer, 2-head BERT classifier, in eval mode."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        id2label=LABELS,
        attn_implementation="eager",
        initializer_range=0.3,
    )
    return BertForSequenceClassification(config).eval()
