"""Shared views of stored answers: token colouring, hover texts and the answers table."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.i18n import t
from halluscope.explain import render_token_scores


def token_tooltips(record: dict[str, Any], detector: str) -> list[str]:
    """Return one hover text per answer token: the token, its probability, entropy and score."""
    return [
        t(
            "answers.token_tooltip",
            token=repr(token["token"]),
            probability=math.exp(token["logprob"]),
            entropy=token["entropy"],
            detector=detector,
            score=token["scores"].get(detector, 0.0),
        )
        for token in record["tokens"]
    ]


def coloured_answer(record: dict[str, Any], detector: str, selected: int | None = None) -> str:
    """Return the answer as escaped HTML, each token coloured by ``detector``'s score."""
    tokens = record["tokens"]
    return render_token_scores(
        record["answer"],
        [(token["start"], token["end"]) for token in tokens],
        [token["scores"].get(detector, 0.0) for token in tokens],
        token_tooltips(record, detector),
        selected=selected,
    )


def answers_table(records: list[dict[str, Any]], detector: str) -> pd.DataFrame:
    """Return one row per answer with the chosen detector's verdict."""
    return pd.DataFrame(
        [
            {
                "index": record["index"],
                "source": record["source"],
                "row_number": record["row_number"],
                "question": record["question"],
                "answer": record["answer"],
                "reference": record["reference"],
                "score": record["detectors"].get(detector, {}).get("score"),
                "flagged": record["detectors"].get(detector, {}).get("flagged"),
                "reason": record["detectors"].get(detector, {}).get("reason"),
            }
            for record in records
        ],
        columns=[
            "index",
            "source",
            "row_number",
            "question",
            "answer",
            "reference",
            "score",
            "flagged",
            "reason",
        ],
    )


#: The detector the answer pages show first: on the demo answers of a fine-tuned
#: SmolLM2 it separated wrong from right answers best (AUROC 0.87).
PREFERRED_DETECTOR = "low_logprob"


def default_detector(detectors: list[str]) -> str:
    """Return the detector to show first: ``PREFERRED_DETECTOR`` when present, else the first."""
    return PREFERRED_DETECTOR if PREFERRED_DETECTOR in detectors else detectors[0]


def quality_threshold(run_id: str, detector: str) -> float | None:
    """Return the threshold set on the Detector quality page for this run and detector, or None."""
    rule = st.session_state.get(state.QUALITY_FLAG_RULE)
    if rule is None:
        return None
    rule_run, rule_detector, threshold = rule
    if rule_run != run_id or rule_detector != detector:
        return None
    return float(threshold)


def flag_answers_by_threshold(
    records: list[dict[str, Any]], detector: str, threshold: float
) -> list[dict[str, Any]]:
    """Return copies of ``records`` whose ``detector`` verdict is flagged by ``score >= threshold``.

    ``flagged`` and ``reason`` of that detector are replaced. The stored
    records and the other detectors' verdicts are left as they are.
    """
    flagged_records = []
    for record in records:
        verdict = record["detectors"].get(detector)
        if verdict is None:
            flagged_records.append(record)
            continue
        score = float(verdict.get("score", 0.0))
        flagged = score >= threshold
        reason_key = "quality.answer_reason_flagged" if flagged else "quality.answer_reason_clear"
        new_verdict = {
            **verdict,
            "flagged": flagged,
            "reason": t(reason_key, score=score, threshold=threshold),
        }
        flagged_records.append(
            {**record, "detectors": {**record["detectors"], detector: new_verdict}}
        )
    return flagged_records


def apply_quality_rule(
    records: list[dict[str, Any]], run_id: str, detector: str
) -> list[dict[str, Any]]:
    """Flag ``records`` by the Detector quality page's threshold when one is set for them.

    When the page set a threshold for this run and detector, show a caption
    with the threshold and return the re-flagged copies. Otherwise return ``records``.
    """
    threshold = quality_threshold(run_id, detector)
    if threshold is None:
        return records
    st.caption(t("quality.answers_rule", detector=detector, threshold=threshold))
    return flag_answers_by_threshold(records, detector, threshold)
