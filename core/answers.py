"""Answer questions with a generation run's model and flag every generated token.

A fine-tuned causal LM is judged on the questions it did not train on: the
validation split saved with its run. ``answer_run`` generates an answer to
each held-out question, runs the generation detectors over every answer
token, and stores the answers in the run folder (``answers.json``), so the
dashboard's pages and a later session read them without generating again.
A question typed by a user is answered the same way with ``answer_question``
and appended to the stored answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.detect.generation import GenerationDetector, create_generation_detectors
from halluscope.inference import (
    GeneratedAnswer,
    InferenceCancelledError,
    generate_answers,
    render_prompt,
)
from halluscope.runs import RunStore
from halluscope.training import load_generation_split, load_run_causal_lm

logger = logging.getLogger(__name__)

ANSWERS_FILE = "answers.json"
"""File in a generation run's folder with the generated answers and their token scores."""

SOURCE_VALIDATION = "validation"
SOURCE_QUESTION = "question"


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings of ``generate_answers`` (greedy unless ``do_sample``)."""

    max_new_tokens: int = 48
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = 0
    batch_size: int = 8


def load_run_model(store: RunStore, run_id: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the fine-tuned causal LM of a completed generation run, with eager attention.

    Raises:
        ValueError: the run is not a completed generation run.
    """
    record = store.get(run_id)
    if record.kind != "generation" or record.status != "completed":
        raise ValueError(
            f"Run '{run_id}' is a {record.status} {record.kind} run; pick a completed "
            "generation run."
        )
    return load_run_causal_lm(store.run_dir(run_id), attention="eager")


def _answer_record(
    index: int,
    source: str,
    question: str,
    context: str | None,
    reference: str | None,
    row_number: int | None,
    answer: GeneratedAnswer,
    detectors: Sequence[GenerationDetector],
) -> dict[str, Any]:
    """Run the detectors over one answer and return its JSON-ready record."""
    results = [detector.detect(answer, context=context) for detector in detectors]
    tokens = answer.token_records()
    for position, token in enumerate(tokens):
        token["scores"] = {
            result.detector: float(result.token_scores[position]) for result in results
        }
    return {
        "index": index,
        "source": source,
        "row_number": row_number,
        "question": question,
        "context": context,
        "reference": reference,
        "prompt": answer.prompt,
        "answer": answer.text,
        "finish_reason": answer.finish_reason,
        "tokens": tokens,
        "detectors": {
            result.detector: {
                "score": result.score,
                "flagged": result.flagged,
                "reason": result.reason,
            }
            for result in results
        },
    }


def answer_examples(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    contexts: Sequence[str | None],
    *,
    references: Sequence[str | None] | None = None,
    row_numbers: Sequence[int | None] | None = None,
    source: str = SOURCE_VALIDATION,
    first_index: int = 0,
    detectors: Sequence[str | GenerationDetector] | None = None,
    settings: GenerationSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """Generate an answer to each question about its context and flag every answer token.

    The prompt is ``render_prompt`` without a system message, the format the
    fine-tuning used. Detectors default to every generation detector that is
    not expensive (see ``create_generation_detectors``).

    Returns:
        One record per question with the keys ``index``, ``source``,
        ``row_number``, ``question``, ``context``, ``reference``, ``prompt``,
        ``answer``, ``finish_reason``, ``tokens`` (per token: token, token_id,
        start, end, logprob, entropy, rank and ``scores`` by detector) and
        ``detectors`` (score, flagged and reason by detector).

    ``progress(done, total)`` counts two steps per question: ``total`` is
    twice the number of questions, the first half generation and the second
    half the detectors.

    Raises:
        InferenceCancelledError: ``should_stop`` returned True.
        ValueError: the sequences differ in length.
    """
    count = len(questions)
    references = list(references) if references is not None else [None] * count
    row_numbers = list(row_numbers) if row_numbers is not None else [None] * count
    if not len(contexts) == len(references) == len(row_numbers) == count:
        raise ValueError(
            f"questions has {count} entries; contexts, references and row_numbers must "
            "have as many."
        )
    settings = settings or GenerationSettings()
    detector_list = create_generation_detectors(detectors, model=model, tokenizer=tokenizer)

    prompts = [
        render_prompt(tokenizer, question, context)
        for question, context in zip(questions, contexts, strict=True)
    ]
    # Progress counts two steps per question: its generation, then its detectors.
    steps = 2 * count

    def report_generation(done: int, total: int) -> None:
        if progress is not None:
            progress(done, steps)

    answers = generate_answers(
        model,
        tokenizer,
        prompts,
        max_new_tokens=settings.max_new_tokens,
        do_sample=settings.do_sample,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        seed=settings.seed,
        batch_size=settings.batch_size,
        progress=report_generation,
        should_stop=should_stop,
    )

    records = []
    for position, answer in enumerate(answers):
        if should_stop is not None and should_stop():
            logger.info("Answering cancelled after scoring %d of %d answers", position, count)
            raise InferenceCancelledError(count + position, steps)
        records.append(
            _answer_record(
                first_index + position,
                source,
                questions[position],
                contexts[position],
                references[position],
                row_numbers[position],
                answer,
                detector_list,
            )
        )
        if progress is not None:
            progress(count + position + 1, steps)
    return records


def read_answers(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    """Return the stored answer records of a run (an empty list before ``answer_run``)."""
    payload = store.read_json(run_id, ANSWERS_FILE)
    if not payload:
        return []
    return list(payload.get("records", []))


def _write_answers(
    store: RunStore, run_id: str, records: list[dict[str, Any]], settings: GenerationSettings
) -> None:
    store.write_json(run_id, ANSWERS_FILE, {"settings": settings.__dict__, "records": records})


def answer_run(
    store: RunStore,
    run_id: str,
    *,
    limit: int | None = None,
    model: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    detectors: Sequence[str | GenerationDetector] | None = None,
    settings: GenerationSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """Answer the held-out questions of a generation run and store the answers in its folder.

    Answers to typed questions stored earlier are kept after the new ones.

    Args:
        store: the run store.
        run_id: a completed generation run.
        limit: answer only the first N validation questions (default: all).
        model: the run's model, when the caller has it loaded already.
        tokenizer: its tokenizer (required with ``model``).
        detectors: generation detector names or instances (default: the cheap ones).
        settings: decoding settings (default: greedy, 48 new tokens).
        progress: called as ``progress(steps_done, steps_total)``, two steps
            per question (see ``answer_examples``).
        should_stop: polled before each batch; returning True cancels, and
            nothing is written.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    if model is None or tokenizer is None:
        model, tokenizer = load_run_model(store, run_id)
    split = load_generation_split(store.run_dir(run_id))
    count = len(split) if limit is None else min(limit, len(split))
    contexts = list(split.contexts[:count]) if split.contexts is not None else [None] * count
    settings = settings or GenerationSettings()
    logger.info("Run %s: answering %d held-out questions", run_id, count)

    records = answer_examples(
        model,
        tokenizer,
        list(split.prompts[:count]),
        contexts,
        references=list(split.answers[:count]),
        row_numbers=list(split.row_numbers[:count]),
        detectors=detectors,
        settings=settings,
        progress=progress,
        should_stop=should_stop,
    )
    typed = [
        record for record in read_answers(store, run_id) if record["source"] != SOURCE_VALIDATION
    ]
    # NOTE: review marks are keyed by answer index, so answering a different
    # number of held-out questions moves the marks of typed questions' answers.
    for position, record in enumerate(typed):
        record["index"] = count + position
    _write_answers(store, run_id, records + typed, settings)
    return records + typed


def answer_question(
    store: RunStore,
    run_id: str,
    question: str,
    context: str | None,
    *,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    detectors: Sequence[str | GenerationDetector] | None = None,
    settings: GenerationSettings | None = None,
) -> dict[str, Any]:
    """Answer one typed question about a pasted context and append it to the run's answers.

    Raises:
        ValueError: the question is empty.
    """
    if not question.strip():
        raise ValueError("The question is empty; type the question to ask.")
    context = context if context and context.strip() else None
    records = read_answers(store, run_id)
    settings = settings or GenerationSettings()
    (record,) = answer_examples(
        model,
        tokenizer,
        [question.strip()],
        [context],
        source=SOURCE_QUESTION,
        first_index=len(records),
        detectors=detectors,
        settings=settings,
    )
    _write_answers(store, run_id, [*records, record], settings)
    return record
