"""Tests of the attribution methods, their registry and the integrated gradients checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halluscope.explain import (
    IntegratedGradientsMethod,
    attribute,
    available_attribution_methods,
    convergence_warning,
    get_attribution_method,
)
from halluscope.inference import encode_example

METHODS = ("integrated_gradients", "saliency", "input_x_gradient")
CONTEXT = "The cat sat on the mat."
CLAIM = "A cat sat."


def test_registry_lists_three_methods():
    names = [cls.name for cls in available_attribution_methods()]

    for name in METHODS:
        assert name in names


def test_get_method_ignores_foreign_options():
    method = get_attribution_method("saliency", n_steps=10)

    assert method.name == "saliency"
    assert method.num_passes() == 1


def test_get_method_unknown_name():
    with pytest.raises(KeyError, match="Registered methods"):
        get_attribution_method("lime")


def test_ig_rejects_too_few_steps():
    with pytest.raises(ValueError, match="n_steps must be at least 2"):
        IntegratedGradientsMethod(n_steps=1)


def test_ig_completeness(tiny_classifier, tokenizer):
    result = attribute(tiny_classifier, tokenizer, CONTEXT, CLAIM, n_steps=50)

    logit_change = result.target_logit - result.baseline_logit
    assert result.convergence_delta is not None
    assert abs(result.scores.sum() - logit_change) <= abs(result.convergence_delta) + 1e-8
    assert abs(result.convergence_delta) < 1e-3 * abs(logit_change)
    assert result.delta_warning is None


def test_ig_baseline_logit_is_pad_input(tiny_classifier, tokenizer):
    result = attribute(tiny_classifier, tokenizer, CONTEXT, CLAIM, target=1, n_steps=8)

    example = encode_example(tokenizer, CONTEXT, CLAIM)
    special = torch.as_tensor(example.special_tokens_mask)
    baseline_ids = torch.where(special, example.input_ids, tokenizer.pad_token_id)
    with torch.no_grad():
        logits = tiny_classifier(
            input_ids=baseline_ids,
            attention_mask=example.model_inputs["attention_mask"],
            token_type_ids=example.model_inputs["token_type_ids"],
        ).logits
    assert result.baseline_logit == pytest.approx(float(logits[0, 1]), abs=1e-9)


def test_ig_special_tokens_score_zero(tiny_classifier, tokenizer):
    result = attribute(tiny_classifier, tokenizer, CONTEXT, CLAIM, n_steps=8)

    special = result.segment_ids == -1
    np.testing.assert_allclose(result.scores[special], 0.0, atol=1e-12)


def test_default_target_is_predicted_class(tiny_classifier, tokenizer):
    example = encode_example(tokenizer, CONTEXT, CLAIM)
    with torch.no_grad():
        predicted = int(tiny_classifier(**example.model_inputs).logits.argmax())

    result = attribute(tiny_classifier, tokenizer, CONTEXT, CLAIM, method="saliency")

    assert result.target == predicted
    assert result.target_label == tiny_classifier.config.id2label[predicted]


def test_attribute_rejects_bad_target(tiny_classifier, tokenizer):
    with pytest.raises(ValueError, match="target must be a class id in \\[0, 1\\]"):
        attribute(tiny_classifier, tokenizer, CONTEXT, CLAIM, target=2)


@pytest.mark.parametrize("method", METHODS)
def test_driving_token_largest_for_target(token_driven_classifier, tokenizer, method):
    result = attribute(
        token_driven_classifier,
        tokenizer,
        "the cat sat on the banana mat",
        target=1,
        method=method,
    )

    assert result.tokens[int(np.argmax(result.scores))] == "banana"
    assert result.scores[result.tokens.index("banana")] > 0


@pytest.mark.parametrize("method", ["integrated_gradients", "input_x_gradient"])
def test_driving_token_negative_for_other_class(token_driven_classifier, tokenizer, method):
    result = attribute(
        token_driven_classifier,
        tokenizer,
        "the cat sat on the banana mat",
        target=0,
        method=method,
    )

    assert result.tokens[int(np.argmin(result.scores))] == "banana"
    assert result.scores[result.tokens.index("banana")] < 0


def test_driving_token_sets_prediction(token_driven_classifier, tokenizer):
    with_token = attribute(token_driven_classifier, tokenizer, "a banana here", method="saliency")

    assert with_token.target_label == "hallucinated"
    assert with_token.target_logit > 0.5


def test_input_x_gradient_matches_manual(tiny_classifier, tokenizer):
    result = attribute(
        tiny_classifier, tokenizer, CONTEXT, CLAIM, target=1, method="input_x_gradient"
    )

    example = encode_example(tokenizer, CONTEXT, CLAIM)
    embeddings = tiny_classifier.get_input_embeddings()(example.input_ids).detach()
    embeddings.requires_grad_(True)
    logit = tiny_classifier(
        inputs_embeds=embeddings,
        attention_mask=example.model_inputs["attention_mask"],
        token_type_ids=example.model_inputs["token_type_ids"],
    ).logits[0, 1]
    (gradient,) = torch.autograd.grad(logit, embeddings)
    expected = (gradient * embeddings).sum(dim=-1)[0].detach().numpy()

    np.testing.assert_allclose(result.scores, expected, rtol=1e-9, atol=1e-12)
    assert result.convergence_delta is None
    assert result.baseline_logit is None


def test_saliency_scores_are_unsigned(tiny_classifier, tokenizer):
    result = attribute(tiny_classifier, tokenizer, CONTEXT, CLAIM, method="saliency")

    assert np.all(result.scores >= 0)
    assert result.scores.shape == (len(result.tokens),)


def test_attribution_leaves_no_parameter_gradients(tiny_classifier, tokenizer):
    for method in METHODS:
        attribute(tiny_classifier, tokenizer, CONTEXT, CLAIM, method=method, n_steps=4)

    assert all(parameter.grad is None for parameter in tiny_classifier.parameters())


def test_convergence_warning_large_delta():
    message = convergence_warning(0.2, 1.0, 50)

    assert message is not None
    assert "Raise n_steps (now 50)" in message


def test_convergence_warning_small_relative_delta():
    assert convergence_warning(0.04, 2.0, 50) is None


def test_convergence_warning_absolute_floor():
    # 0.03 is 30% of a 0.1 logit change but below the 0.05 absolute floor.
    assert convergence_warning(0.03, 0.1, 50) is None
