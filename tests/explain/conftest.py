"""Tiny BERT classifiers for the explanation tests, with the real MiniLM tokenizer."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerBase

from halluscope.models import load_tokenizer

LABELS = {0: "supported", 1: "hallucinated"}

#: The word whose presence drives class 1 in ``token_driven_classifier``.
DRIVING_WORD = "banana"


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerBase:
    return load_tokenizer("minilm")


def tiny_config(tokenizer: PreTrainedTokenizerBase, **overrides) -> BertConfig:
    settings = dict(
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
    settings.update(overrides)
    return BertConfig(**settings)


@pytest.fixture
def tiny_classifier(tokenizer) -> BertForSequenceClassification:
    """A randomly initialised 2-layer, 2-head BERT classifier in float64, eval mode."""
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config(tokenizer)).double().eval()


@pytest.fixture
def sdpa_classifier(tokenizer) -> BertForSequenceClassification:
    """The tiny classifier loaded with SDPA attention, which returns no attention weights."""
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config(tokenizer, attn_implementation="sdpa")).eval()


@pytest.fixture
def token_driven_classifier(tokenizer) -> BertForSequenceClassification:
    """A 1-layer BERT whose class-1 logit rises with the word ``DRIVING_WORD``.

    Construction, with hidden size 8:

    * a huge ``layer_norm_eps`` with LayerNorm weights of sqrt(eps) turns every
      LayerNorm into plain mean-centring, so the network is smooth;
    * the driving token's word embedding is 3 along dimension 0, every other
      embedding is 0 there, and position and token-type embeddings are zero;
    * the single head's keys read dimension 0 and its query is a constant, so
      every token attends almost only to the driving token. Values are the
      identity, and the attention output scales them by 5;
    * the feed-forward block adds zero, the pooler is tanh(0.1 x) and the
      classifier reads dimension 0 with weight +1 for class 1 and -1 for class 0.
    """
    hidden = 8
    eps = 1e6
    config = tiny_config(
        tokenizer,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        layer_norm_eps=eps,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).double().eval()
    driving_id = tokenizer.convert_tokens_to_ids(DRIVING_WORD)
    identity = torch.eye(hidden, dtype=torch.float64)

    with torch.no_grad():
        embeddings = model.bert.embeddings
        embeddings.word_embeddings.weight.normal_(0.0, 0.5)
        embeddings.word_embeddings.weight[:, 0] = 0.0
        embeddings.word_embeddings.weight[driving_id] = 0.0
        embeddings.word_embeddings.weight[driving_id, 0] = 3.0
        embeddings.position_embeddings.weight.zero_()
        embeddings.token_type_embeddings.weight.zero_()

        layer_norms = [embeddings.LayerNorm]
        layer = model.bert.encoder.layer[0]
        attention = layer.attention
        attention.self.query.weight.zero_()
        attention.self.query.bias.zero_()
        attention.self.query.bias[0] = 4.0
        attention.self.key.weight.zero_()
        attention.self.key.weight[0, 0] = 4.0
        attention.self.key.bias.zero_()
        attention.self.value.weight.copy_(identity)
        attention.self.value.bias.zero_()
        attention.output.dense.weight.copy_(5.0 * identity)
        attention.output.dense.bias.zero_()
        layer.output.dense.weight.zero_()
        layer.output.dense.bias.zero_()
        layer_norms += [attention.output.LayerNorm, layer.output.LayerNorm]
        for norm in layer_norms:
            norm.weight.fill_(math.sqrt(eps))
            norm.bias.zero_()

        model.bert.pooler.dense.weight.copy_(0.1 * identity)
        model.bert.pooler.dense.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.weight[0, 0] = -1.0
        model.classifier.weight[1, 0] = 1.0
        model.classifier.bias.zero_()
    return model
