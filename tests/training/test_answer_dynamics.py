"""Tests of the per-example answer losses recorded during causal LM fine-tuning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM, TrainerControl, TrainerState

from halluscope.models import load_tokenizer
from halluscope.training import (
    CompletionCollator,
    completion_nll_per_example,
    completion_token_nll,
    encode_example,
)
from halluscope.training.answer_dynamics import (
    ANSWER_DYNAMICS_FILE,
    AnswerDynamics,
    AnswerDynamicsCallback,
    load_answer_dynamics,
)

EXAMPLES = (
    ("What colour is the box?", "red", "The box is red."),
    ("Who wrote it?", "Ann Berg", "Ann Berg wrote it in 1901."),
    ("Where is the tower?", "in Trilby", "The tower stands in Trilby."),
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def model(tiny_llama_dir):
    return LlamaForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def dataset(tokenizer):
    encoded = [encode_example(tokenizer, q, a, c, 64) for q, a, c in EXAMPLES]
    return [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in encoded]


def hand_answer_loss(model, example) -> tuple[float, bool]:
    """Mean cross-entropy of one unpadded example's answer tokens, and its exact match."""
    input_ids = torch.tensor([example["input_ids"]])
    labels = torch.tensor(example["labels"])
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits[0]
    answer_positions = (labels != -100).nonzero()[:, 0]
    predicting = logits[answer_positions - 1]
    targets = labels[answer_positions]
    loss = F.cross_entropy(predicting, targets).item()
    exact = bool((predicting.argmax(dim=-1) == targets).all())
    return loss, exact


def test_per_example_nll_matches_hand_computation(model, tokenizer, dataset):
    batch = CompletionCollator(tokenizer.pad_token_id)(dataset)

    with torch.no_grad():
        nll_sum, token_count, exact = completion_nll_per_example(model, batch)
        total_nll, total_count = completion_token_nll(model, batch)

    answer_counts = [sum(label != -100 for label in item["labels"]) for item in dataset]
    assert token_count.tolist() == answer_counts
    for row, item in enumerate(dataset):
        loss, matched = hand_answer_loss(model, item)
        assert (nll_sum[row] / token_count[row]).item() == pytest.approx(loss, rel=1e-4)
        assert bool(exact[row]) == matched
    torch.testing.assert_close(nll_sum.sum(), total_nll, rtol=1e-5, atol=1e-4)
    assert int(token_count.sum()) == int(total_count)


def make_callback(tokenizer, dataset, path, **options) -> AnswerDynamicsCallback:
    return AnswerDynamicsCallback(
        dataset,
        CompletionCollator(tokenizer.pad_token_id),
        [11, 12, 13],
        path,
        batch_size=2,
        **options,
    )


def test_callback_records_before_and_each_epoch(model, tokenizer, dataset, tmp_path):
    callback = make_callback(tokenizer, dataset, tmp_path / ANSWER_DYNAMICS_FILE)

    callback.on_train_begin(None, TrainerState(), TrainerControl(), model=model)
    callback.on_epoch_end(None, TrainerState(epoch=1.0), TrainerControl(), model=model)

    stored = load_answer_dynamics(tmp_path)
    assert stored.epochs == (0.0, 1.0)
    assert stored.row_numbers == (11, 12, 13)
    assert stored.mean_nll.shape == (2, 3)
    loss, matched = hand_answer_loss(model, dataset[1])
    assert stored.mean_nll[0, 1] == pytest.approx(loss, rel=1e-4)
    assert bool(stored.exact_match[0, 1]) == matched
    assert stored.answer_tokens.tolist() == [
        sum(label != -100 for label in item["labels"]) for item in dataset
    ]
    assert len(callback.seconds) == 2


def test_callback_resume_keeps_earlier_epochs(model, tokenizer, dataset, tmp_path):
    path = tmp_path / ANSWER_DYNAMICS_FILE
    earlier = AnswerDynamics(
        row_numbers=(11, 12, 13),
        epochs=(0.0, 1.0, 2.0),
        mean_nll=np.array([[9.0, 9.0, 9.0], [8.0, 8.0, 8.0], [7.0, 7.0, 7.0]]),
        exact_match=np.zeros((3, 3), dtype=bool),
        answer_tokens=np.array([2, 3, 4]),
    )
    path.write_text(json.dumps(earlier.to_dict()))
    callback = make_callback(tokenizer, dataset, path)

    callback.on_train_begin(None, TrainerState(epoch=1.0), TrainerControl(), model=model)
    callback.on_epoch_end(None, TrainerState(epoch=2.0), TrainerControl(), model=model)

    stored = load_answer_dynamics(tmp_path)
    assert stored.epochs == (0.0, 1.0, 2.0)
    assert stored.mean_nll[:2].tolist() == [[9.0] * 3, [8.0] * 3]
    assert stored.mean_nll[2, 0] != 7.0


def test_callback_skips_cancelled_run(model, tokenizer, dataset, tmp_path):
    callback = make_callback(
        tokenizer, dataset, tmp_path / ANSWER_DYNAMICS_FILE, is_cancelled=lambda: True
    )

    callback.on_train_begin(None, TrainerState(), TrainerControl(), model=model)

    assert callback.epochs == []
    assert load_answer_dynamics(tmp_path) is None


def test_dynamics_rejects_wrong_shape():
    with pytest.raises(ValueError, match="mean_nll has shape"):
        AnswerDynamics(
            row_numbers=(1, 2),
            epochs=(0.0,),
            mean_nll=np.zeros((1, 3)),
            exact_match=np.zeros((1, 2), dtype=bool),
            answer_tokens=np.array([1, 1]),
        )
