"""The walking skeleton on real models: fine-tune MiniLM on the demo claims, predict, explain."""

from __future__ import annotations

import json

import numpy as np
import pytest

from halluscope.explain import aggregate_to_words, attribute
from halluscope.models import load_sequence_classifier, load_tokenizer
from halluscope.training import load_validation_split
from halluscope.workflows import predict_run, run_model_folder

pytestmark = pytest.mark.integration

# Cost bound for the attribution checks: integrated gradients on MiniLM takes a few
# seconds per example on 2 CPU cores, so the checks use a fixed sample of rows.
ATTRIBUTION_SAMPLE = 24
IG_STEPS = 32


def test_demo_run_reaches_accuracy(demo_claims_run):
    record = demo_claims_run.store.get(demo_claims_run.run_id)

    assert record.status == "completed"
    assert demo_claims_run.metrics["accuracy"] >= 0.85
    assert record.metrics["accuracy"] == demo_claims_run.metrics["accuracy"]


def test_predict_flags_confidently_wrong(demo_claims_run):
    result = predict_run(demo_claims_run.store, demo_claims_run.run_id)
    table = result.table

    assert result.summary["examples"] == 120
    assert result.summary["accuracy"] == pytest.approx(demo_claims_run.metrics["accuracy"])
    assert set(table["gold"]) == {"hallucinated", "supported"}
    wrong_and_sure = (~table["correct"]) & (table["confidence"] >= 0.8)
    assert (table.loc[wrong_and_sure, "flagged"]).all()
    assert not table.loc[table["correct"], "flagged"].any()


def _claim_words_hit(words, spans) -> bool:
    return any(word.start < end and start < word.end for word in words for start, end in spans)


def test_altered_words_rank_high_in_attributions(demo_claims_run):
    store, run_id, claims = demo_claims_run.store, demo_claims_run.run_id, demo_claims_run.claims
    folder = run_model_folder(store, run_id)
    model = load_sequence_classifier(str(folder), attention="eager")
    tokenizer = load_tokenizer(str(folder))
    validation = load_validation_split(store.run_dir(run_id))
    predictions = predict_run(store, run_id).table

    candidates = []
    for position, row_number in enumerate(validation.row_numbers):
        row = claims.loc[row_number]
        correct = predictions["correct"].iloc[position]
        if row["label"] == "hallucinated" and correct:
            candidates.append((position, json.loads(row["altered_spans"])))
    assert len(candidates) >= ATTRIBUTION_SAMPLE

    rng = np.random.default_rng(0)
    sample = [candidates[i] for i in rng.choice(len(candidates), ATTRIBUTION_SAMPLE, replace=False)]
    hits = 0
    for position, spans in sample:
        context, claim = validation.texts[position], validation.text_pairs[position]
        attributions = attribute(model, tokenizer, context, claim, n_steps=IG_STEPS)
        words = aggregate_to_words(attributions, context, claim)
        top_claim_words = words.top_words(3, segment=1)
        hits += _claim_words_hit(top_claim_words, spans)

    share = hits / len(sample)
    print(f"altered word in top-3 claim words: {hits}/{len(sample)} = {share:.2f}")
    assert share >= 0.5


def test_integrated_gradients_complete_on_minilm(demo_claims_run):
    store, run_id = demo_claims_run.store, demo_claims_run.run_id
    folder = run_model_folder(store, run_id)
    model = load_sequence_classifier(str(folder), attention="eager")
    tokenizer = load_tokenizer(str(folder))
    validation = load_validation_split(store.run_dir(run_id))

    for position in range(3):
        attributions = attribute(
            model, tokenizer, validation.texts[position], validation.text_pairs[position]
        )
        logit_change = attributions.target_logit - attributions.baseline_logit
        gap = abs(float(attributions.scores.sum()) - logit_change)

        assert abs(logit_change) > 0.1
        assert gap <= abs(attributions.convergence_delta) + 1e-4
