"""Which facts of a QA data set the base model already answers right, and how each group fares.

Gekhman et al. ("Does Fine-Tuning LLMs on New Knowledge Encourage
Hallucinations?", EMNLP 2024) found that fine-tuning examples with facts
unknown to the base model are fitted more slowly than known ones, and that
fitting them raises the model's hallucinations. To test this on a run,
``probe_knowledge`` asks the base model every question once greedily and a
few times with sampling, with the prompt that fine-tuning uses, and sorts the
rows:

* ``known``: the greedy answer matches the reference;
* ``maybe_known``: the greedy answer is wrong, but at least one sample matches;
* ``unknown``: no answer matches.

With one prompt per question these three groups are coarser than the paper's
four (its HighlyKnown and MaybeKnown both count as ``known`` here, and its
WeaklyKnown is ``maybe_known`` here).

Answers are judged with ``halluscope.inference.matching.answer_matches`` (a
lexical test). The records go to ``knowledge.json`` in the run folder. After
training, ``group_loss_curves`` averages the answer losses of
``answer_dynamics.json`` by group, and ``hallucination_by_group`` gives the
share of wrong fine-tuned answers on the validation rows of each group.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.data import GenerationData, format_rows
from halluscope.inference.generate import GeneratedAnswer, generate_answers
from halluscope.inference.matching import answer_matches, normalize_answer
from halluscope.inference.prompting import render_prompt
from halluscope.runs import RunStore, write_json_atomic
from halluscope.training.answer_dynamics import AnswerDynamics

logger = logging.getLogger(__name__)

KNOWLEDGE_FILE = "knowledge.json"
"""File in a generation run's folder with the base model's answers and each row's category."""

KNOWN = "known"
MAYBE_KNOWN = "maybe_known"
UNKNOWN = "unknown"
CATEGORIES = (KNOWN, MAYBE_KNOWN, UNKNOWN)
"""Knowledge categories, from known to unknown."""

SPLIT_TRAIN = "train"
SPLIT_VALIDATION = "validation"
SPLITS = (SPLIT_TRAIN, SPLIT_VALIDATION)

GenerateFunction = Callable[..., list[GeneratedAnswer]]
"""A function with the signature of ``generate_answers`` (tests pass a stub)."""


@dataclass(frozen=True)
class ProbeSettings:
    """Decoding settings of the knowledge probe.

    Attributes:
        samples: sampled answers per question besides the greedy one (0: greedy only,
            so no row can be ``maybe_known``).
        temperature: sampling temperature of the samples.
        max_new_tokens: maximum tokens per answer.
        seed: seed of the first sampling pass; pass k uses ``seed + k``.
        batch_size: prompts per batch; a sampling batch holds all their samples.
    """

    samples: int = 4
    temperature: float = 0.5
    max_new_tokens: int = 32
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0, got {self.samples}.")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")


@dataclass(frozen=True)
class KnowledgeRecord:
    """The base model's answers to one question, and the category they put it in.

    Attributes:
        row_number: 1-based data row in the source file.
        split: ``"train"`` or ``"validation"``.
        greedy_answer: the greedy answer text.
        greedy_right: whether the greedy answer matches the reference.
        samples_right: how many sampled answers match the reference.
        sample_count: how many answers were sampled.
        category: ``"known"``, ``"maybe_known"`` or ``"unknown"``.
    """

    row_number: int
    split: str
    greedy_answer: str
    greedy_right: bool
    samples_right: int
    sample_count: int
    category: str

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}.")
        if self.category not in CATEGORIES:
            raise ValueError(f"category must be one of {CATEGORIES}, got {self.category!r}.")
        if not 0 <= self.samples_right <= self.sample_count:
            raise ValueError(
                f"samples_right must lie in [0, sample_count={self.sample_count}], "
                f"got {self.samples_right}."
            )


@dataclass(frozen=True)
class KnowledgeProbe:
    """The stored result of a knowledge probe: one record per probed row, and its settings."""

    records: tuple[KnowledgeRecord, ...]
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``from_dict`` reads it back)."""
        return {
            "settings": asdict(self.settings),
            "seconds": self.seconds,
            "records": [asdict(record) for record in self.records],
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> KnowledgeProbe:
        """Rebuild a probe result from ``to_dict`` output."""
        return cls(
            records=tuple(KnowledgeRecord(**record) for record in values["records"]),
            settings=ProbeSettings(**values.get("settings", {})),
            seconds=values.get("seconds"),
        )

    def counts(self) -> pd.DataFrame:
        """Return the number of rows per split (rows) and category (columns), zeros included."""
        frame = pd.DataFrame(
            [(record.split, record.category) for record in self.records],
            columns=["split", "category"],
        )
        table = pd.crosstab(frame["split"], frame["category"])
        return table.reindex(index=list(SPLITS), columns=list(CATEGORIES), fill_value=0)


def categorize(greedy_right: bool, samples_right: int) -> str:
    """Return the knowledge category of a question from how the base model answered it."""
    if greedy_right:
        return KNOWN
    if samples_right > 0:
        return MAYBE_KNOWN
    return UNKNOWN


def probe_knowledge(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    contexts: Sequence[str | None],
    references: Sequence[str],
    row_numbers: Sequence[int],
    splits: Sequence[str],
    *,
    settings: ProbeSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    generate: GenerateFunction = generate_answers,
) -> list[KnowledgeRecord]:
    """Ask the model every question greedily and ``settings.samples`` times sampled, and sort them.

    The prompt is ``render_prompt(tokenizer, question, context)``, the format
    fine-tuning trains on. The samples are drawn in one seeded call, so the
    same inputs, settings and batch size give the same records.

    Args:
        model: the base causal LM.
        tokenizer: its tokenizer, with a pad token.
        questions, contexts, references, row_numbers, splits: one entry per row.
        settings: decoding settings (default: 4 samples at temperature 0.5).
        progress: called as ``progress(answers_done, answers_total)``, where the
            total is ``1 + samples`` times the number of probed rows.
        should_stop: polled before each batch; returning True cancels.
        generate: the generation function (``generate_answers``).

    Returns:
        One record per row whose reference has at least one word, in input order.

    Raises:
        InferenceCancelledError: ``should_stop`` returned True.
        ValueError: the sequences differ in length.
    """
    settings = settings or ProbeSettings()
    count = len(questions)
    lengths = {len(contexts), len(references), len(row_numbers), len(splits)}
    if lengths != {count}:
        raise ValueError(
            f"questions has {count} entries; contexts, references, row_numbers and splits "
            "must have as many."
        )

    judged = [index for index in range(count) if normalize_answer(references[index])]
    if len(judged) < count:
        skipped = sorted(set(range(count)) - set(judged))
        logger.warning(
            "Knowledge probe: left out %s, whose reference answer has no words to match.",
            format_rows(int(row_numbers[index]) for index in skipped),
        )
    prompts = [render_prompt(tokenizer, questions[index], contexts[index]) for index in judged]
    total = (1 + settings.samples) * len(prompts)

    def progress_from(offset: int) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, _total: progress(offset + done, total)

    common = {"max_new_tokens": settings.max_new_tokens, "should_stop": should_stop}
    greedy = generate(
        model,
        tokenizer,
        prompts,
        batch_size=settings.batch_size,
        progress=progress_from(0),
        **common,
    )

    # All samples come from one call: each prompt is repeated ``samples`` times,
    # and a batch contains the samples of ``batch_size`` prompts, so that one decoding
    # step serves every sample of those prompts.
    samples_right = [0] * len(prompts)
    if settings.samples:
        repeated = [prompt for prompt in prompts for _ in range(settings.samples)]
        sampled = generate(
            model,
            tokenizer,
            repeated,
            do_sample=True,
            temperature=settings.temperature,
            seed=settings.seed,
            batch_size=settings.batch_size * settings.samples,
            progress=progress_from(len(prompts)),
            **common,
        )
        for position, answer in enumerate(sampled):
            prompt_index = position // settings.samples
            reference = references[judged[prompt_index]]
            samples_right[prompt_index] += answer_matches(answer.text, reference)

    records = []
    for position, index in enumerate(judged):
        greedy_right = answer_matches(greedy[position].text, references[index])
        records.append(
            KnowledgeRecord(
                row_number=int(row_numbers[index]),
                split=splits[index],
                greedy_answer=greedy[position].text,
                greedy_right=greedy_right,
                samples_right=samples_right[position],
                sample_count=settings.samples,
                category=categorize(greedy_right, samples_right[position]),
            )
        )
    return records


def probe_run_rows(
    store: RunStore,
    run_id: str,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: GenerationData,
    train_rows: Sequence[int],
    validation_rows: Sequence[int],
    *,
    settings: ProbeSettings | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> KnowledgeProbe:
    """Probe the base model on a run's training and validation rows and store the result.

    Progress goes to the run's events (``"probe"`` events with ``done`` and
    ``total``) and to the log. The result is written to ``knowledge.json``.

    Args:
        train_rows, validation_rows: indices into ``data`` (not row numbers).

    Raises:
        InferenceCancelledError: ``should_stop`` returned True; nothing is written.
    """
    if data.answers is None:
        raise ValueError(
            f"The knowledge probe needs reference answers, but {data.file_name} has no answer "
            "column. Map an answer column, or turn the probe off."
        )
    settings = settings or ProbeSettings()
    # NOTE: the probe asks with the whole context, not the copy that training
    # cut to max_length, so a context longer than the model's positions raises.
    indices = [*train_rows, *validation_rows]
    splits = [SPLIT_TRAIN] * len(train_rows) + [SPLIT_VALIDATION] * len(validation_rows)
    started = time.monotonic()
    logger.info(
        "Run %s: probing the base model on %d questions (greedy and %d samples).",
        run_id,
        len(indices),
        settings.samples,
    )

    def report(done: int, total: int) -> None:
        store.append_event(run_id, {"type": "probe", "done": done, "total": total})
        logger.info("Run %s: knowledge probe, %d of %d answers.", run_id, done, total)

    records = probe_knowledge(
        model,
        tokenizer,
        [data.prompts[index] for index in indices],
        [data.contexts[index] if data.contexts is not None else None for index in indices],
        [data.answers[index] for index in indices],
        [data.row_numbers[index] for index in indices],
        splits,
        settings=settings,
        progress=report,
        should_stop=should_stop,
    )
    probe = KnowledgeProbe(tuple(records), settings, round(time.monotonic() - started, 1))
    write_json_atomic(store.run_dir(run_id) / KNOWLEDGE_FILE, probe.to_dict())

    counts = probe.counts()
    summary = {
        f"{split}_{category}": int(counts.loc[split, category])
        for split in SPLITS
        for category in CATEGORIES
    }
    store.append_event(run_id, {"type": "knowledge", "seconds": probe.seconds, **summary})
    logger.info("Run %s: knowledge probe done in %.1f s: %s", run_id, probe.seconds, summary)
    return probe


def load_knowledge(run_dir: Path | str) -> KnowledgeProbe | None:
    """Return the knowledge probe stored in ``run_dir``, or None when the run has none."""
    path = Path(run_dir) / KNOWLEDGE_FILE
    if not path.is_file():
        return None
    return KnowledgeProbe.from_dict(json.loads(path.read_text(encoding="utf-8")))


def group_loss_curves(dynamics: AnswerDynamics, probe: KnowledgeProbe) -> pd.DataFrame:
    """Average the training rows' answer losses by knowledge category, per recorded epoch.

    A group's loss is the mean over its rows of each row's mean answer NLL, so
    every row weighs the same whatever its answer length. Training rows that
    the probe left out are left out here too.

    Returns:
        One row per (epoch, category) with at least one training row, with the
        columns ``epoch``, ``category``, ``rows``, ``mean_nll`` (nats per
        token) and ``exact_match_rate`` (share of rows whose every answer token
        is the argmax).
    """
    category_of = {
        record.row_number: record.category
        for record in probe.records
        if record.split == SPLIT_TRAIN
    }
    positions = {category: [] for category in CATEGORIES}
    for position, row_number in enumerate(dynamics.row_numbers):
        category = category_of.get(row_number)
        if category is not None:
            positions[category].append(position)

    rows = []
    for epoch_index, epoch in enumerate(dynamics.epochs):
        for category in CATEGORIES:
            members = positions[category]
            if not members:
                continue
            rows.append(
                {
                    "epoch": epoch,
                    "category": category,
                    "rows": len(members),
                    "mean_nll": float(dynamics.mean_nll[epoch_index, members].mean()),
                    "exact_match_rate": float(dynamics.exact_match[epoch_index, members].mean()),
                }
            )
    return pd.DataFrame(rows, columns=["epoch", "category", "rows", "mean_nll", "exact_match_rate"])


def hallucination_by_group(
    probe: KnowledgeProbe, answers: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """Return the share of wrong fine-tuned answers on the validation rows of each category.

    Args:
        probe: the run's knowledge probe.
        answers: the run's stored answer records (``halluscope.answers.read_answers``).
            Only answers to validation rows (``source == "validation"``) with a
            reference count. An answer "hallucinates" when it does not match
            its reference (``answer_matches``).

    Returns:
        One row per category with the columns ``category``, ``validation_rows``
        (probed rows of the category), ``answered``, ``hallucinated`` and
        ``hallucination_rate`` (NaN when no row of the category was answered).
    """
    category_of = {
        record.row_number: record.category
        for record in probe.records
        if record.split == SPLIT_VALIDATION
    }
    answered = dict.fromkeys(CATEGORIES, 0)
    wrong = dict.fromkeys(CATEGORIES, 0)
    for answer in answers:
        if answer.get("source") != SPLIT_VALIDATION or not answer.get("reference"):
            continue
        category = category_of.get(answer.get("row_number"))
        if category is None or not normalize_answer(answer["reference"]):
            continue
        answered[category] += 1
        wrong[category] += not answer_matches(answer.get("answer", ""), answer["reference"])

    totals = pd.Series(list(category_of.values()), dtype=object).value_counts()
    rows = [
        {
            "category": category,
            "validation_rows": int(totals.get(category, 0)),
            "answered": answered[category],
            "hallucinated": wrong[category],
            "hallucination_rate": (
                wrong[category] / answered[category] if answered[category] else math.nan
            ),
        }
        for category in CATEGORIES
    ]
    return pd.DataFrame(rows)
