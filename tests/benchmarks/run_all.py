"""Benchmark every generation detector on the shared labelled data and write RESULTS.md.

Protocol:

- XSum (word labels): rule-based detectors are measured on each system's
  file; trained detectors are trained on one system's file and measured on
  the other, in both directions. The token classifier needs no scoring-model
  features to train, so it trains on ``--classifier-limit`` rows of the
  other file (default: all of them), the others on ``--limit`` rows.
- HaluEval QA: every right and hallucinated answer is scored; pairwise
  accuracy over the matched pairs and AUROC over all answers. Trained
  detectors are cross-validated with folds of whole questions.
- FaithDial audits: response-level AUROC over the gold and GPT-2 files;
  trained detectors are cross-validated by file (leave one file out).

Run ``python tests/benchmarks/run_all.py --limit 100`` (or ``make bench`` for
every row). ``low_context_attribution`` is left out: it costs one backward
pass per batch of answer tokens. ``sampling_consistency`` samples answers
from the scoring model for every response, so it runs only on the data sets
named in ``--sampling-datasets`` (HaluEval by default), on the first
``--sampling-limit`` responses of each, and ``--no-sampling`` leaves it out.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from halluscope.detect import (
    LookbackLensDetector,
    SamplingConsistencyDetector,
    StackedEnsembleDetector,
)
from halluscope.detect.generation import create_generation_detectors
from halluscope.detect.token_classifier import TokenClassifierDetector
from halluscope.evaluate.datasets import load_faithdial, load_halueval, load_xsum
from halluscope.evaluate.features import extract_features
from halluscope.evaluate.runner import (
    DetectorQuality,
    format_table,
    measure_detector,
    measure_detectors,
    out_of_fold_results,
    run_detectors,
    train_detector,
    train_token_classifier_on,
)
from halluscope.models import load_causal_lm, load_tokenizer

logger = logging.getLogger("halluscope.benchmark")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
TRAINED = (LookbackLensDetector, StackedEnsembleDetector)
XSUM_COLUMNS = [
    "word_auroc",
    "word_auprc",
    "word_best_f1",
    "word_best_threshold",
    "word_f1_at_threshold",
    "response_auroc",
]
HALUEVAL_COLUMNS = ["pairwise_accuracy", "response_auroc", "response_auprc", "response_best_f1"]
FAITHDIAL_COLUMNS = [
    "response_auroc",
    "response_auprc",
    "response_best_f1",
    "response_f1_at_threshold",
    "response_ece",
]


DATASETS = ("xsum", "halueval", "faithdial")


def _dataset_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown data sets {unknown}; choose from {', '.join(DATASETS)}."
        )
    return names


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="Rows per file (questions for HaluEval).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Shared data folder.")
    parser.add_argument("--model", default="smollm2-135m", help="Causal LM that scores responses.")
    parser.add_argument(
        "--max-context-tokens", type=int, default=512, help="Contexts are cut after N tokens."
    )
    parser.add_argument("--window", type=int, default=8, help="Token window of trained detectors.")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).with_name("RESULTS.md"),
        help="Markdown file to write.",
    )
    parser.add_argument(
        "--classifier-limit",
        type=int,
        help="XSum rows the token classifier trains on (default: the whole file).",
    )
    parser.add_argument(
        "--classifier-epochs", type=int, default=2, help="Training epochs of the token classifier."
    )
    parser.add_argument(
        "--no-sampling", action="store_true", help="Leave out the sampling_consistency detector."
    )
    parser.add_argument(
        "--datasets",
        type=_dataset_list,
        default=list(DATASETS),
        help="Comma-separated data sets to benchmark (default: xsum,halueval,faithdial).",
    )
    parser.add_argument(
        "--sampling-datasets",
        type=_dataset_list,
        default=["halueval"],
        help="Comma-separated data sets (xsum, halueval, faithdial) that sampling_consistency "
        "runs on (default: halueval; on 2 CPU cores it takes 15 to 45 s per XSum summary).",
    )
    parser.add_argument(
        "--sampling-limit",
        type=int,
        help="Responses per data set that sampling_consistency scores, from the top (default: "
        "all); keep it even on HaluEval so that whole answer pairs are measured.",
    )
    parser.add_argument(
        "--samples", type=int, default=3, help="Sampled answers per prompt of sampling_consistency."
    )
    parser.add_argument(
        "--sample-tokens",
        type=int,
        default=48,
        help="Maximum new tokens per sampled answer of sampling_consistency.",
    )
    parser.add_argument(
        "--detector-dir",
        type=Path,
        help="Folder to save the trained XSum detectors in (default: not saved).",
    )
    return parser.parse_args(argv)


class Benchmark:
    """Extracts features once per file and measures every detector on them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.model = load_causal_lm(args.model)
        self.tokenizer = load_tokenizer(args.model)
        names = [
            detector.name
            for detector in create_generation_detectors(
                None, model=self.model, tokenizer=self.tokenizer
            )
        ]
        self.rule_based = create_generation_detectors(
            names, model=self.model, tokenizer=self.tokenizer
        )
        self.sampling = None
        if not args.no_sampling:
            self.sampling = SamplingConsistencyDetector.for_model(
                self.model,
                self.tokenizer,
                samples=args.samples,
                max_new_tokens=args.sample_tokens,
            )
        self.timings: dict[str, float] = {}
        self.rule_rows: dict[int, list[DetectorQuality]] = {}
        self.training_seconds: dict[str, list[float]] = {
            cls.name: [] for cls in (*TRAINED, TokenClassifierDetector)
        }
        self.counts: dict[str, str] = {}

    def samples(self, dataset_name: str) -> bool:
        """Return whether sampling_consistency runs on a data set."""
        return self.sampling is not None and dataset_name in self.args.sampling_datasets

    def features(self, dataset, stage: str):
        started = time.perf_counter()

        def report(done: int, total: int) -> None:
            if done % 25 == 0 or done == total:
                logger.info("%s: %d of %d responses", stage, done, total)

        examples = extract_features(
            self.model,
            self.tokenizer,
            dataset.records,
            max_context_tokens=self.args.max_context_tokens,
            progress=report,
        )
        self.timings[f"features {stage}"] = time.perf_counter() - started

        # Rule-based detectors run once per file. Their token scores stay in the
        # examples, where the stacked ensemble reads them.
        started = time.perf_counter()
        rows = measure_detectors(
            examples, self.rule_based, run_detectors(examples, self.rule_based)
        )
        self.timings[f"rule-based detectors {stage}"] = time.perf_counter() - started

        # sampling_consistency costs several generations per response, so it may
        # score only the first --sampling-limit responses.
        if self.samples(dataset.name):
            started = time.perf_counter()
            sampled = examples[: self.args.sampling_limit]
            results = run_detectors(sampled, [self.sampling])
            row = measure_detectors(sampled, [self.sampling], results)[0]
            if len(sampled) < len(examples):
                row = dataclasses.replace(
                    row, detector=f"{row.detector} (first {len(sampled)} responses)"
                )
            rows.append(row)
            self.timings[f"sampling_consistency {stage}"] = time.perf_counter() - started
        self.rule_rows[id(examples)] = rows
        return examples

    def xsum(self) -> list[tuple[str, list[DetectorQuality]]]:
        folder = self.args.data / "xsum-token-labels"
        systems = {}
        for name in ("berts2s", "tconvs2s"):
            dataset = load_xsum(folder / f"{name}.jsonl", limit=self.args.limit)
            systems[name] = self.features(dataset, f"xsum {name}")
            words = sum(len(record.word_labels) for record in dataset.records)
            positives = sum(sum(record.word_labels) for record in dataset.records)
            self.counts[f"XSum {name}"] = (
                f"{len(dataset)} summaries, {words} words ({positives} hallucinated)"
            )

        sections = []
        for train_name, test_name in (("berts2s", "tconvs2s"), ("tconvs2s", "berts2s")):
            rows = list(self.rule_rows[id(systems[test_name])])
            for cls in TRAINED:
                detector = train_detector(
                    cls,
                    systems[train_name],
                    model=self.model,
                    tokenizer=self.tokenizer,
                    window=self.args.window,
                    reduce="max",
                )
                self.training_seconds[cls.name].append(detector.training["seconds"])
                if self.args.detector_dir is not None:
                    detector.save(self.args.detector_dir / f"{cls.name}-xsum-{train_name}.json")
                results = run_detectors(systems[test_name], [detector])[cls.name]
                rows.append(
                    measure_detector(
                        f"{cls.name} (trained on {train_name})",
                        systems[test_name],
                        results,
                        threshold=detector.threshold,
                        probabilistic=True,
                    )
                )
            rows.append(self.xsum_classifier_row(folder, train_name, test_name, systems))
            sections.append((f"XSum: test on {test_name} (trained detectors: {train_name})", rows))
        return sections

    def xsum_classifier_row(self, folder, train_name, test_name, systems) -> DetectorQuality:
        training = load_xsum(folder / f"{train_name}.jsonl", limit=self.args.classifier_limit)
        classifier = train_token_classifier_on(
            training.records, reduce="max", epochs=self.args.classifier_epochs
        )
        self.training_seconds[classifier.name].append(classifier.training["seconds"])
        self.counts[f"Token classifier trained on {train_name}"] = (
            f"{len(training)} summaries, {classifier.training['windows']} windows, "
            f"epoch losses {classifier.training['epoch_losses']}"
        )
        if self.args.detector_dir is not None:
            classifier.save(self.args.detector_dir / f"{classifier.name}-xsum-{train_name}")
        results = run_detectors(systems[test_name], [classifier])[classifier.name]
        return measure_detector(
            f"{classifier.name} (trained on {len(training)} {train_name} rows)",
            systems[test_name],
            results,
            threshold=classifier.threshold,
            probabilistic=True,
        )

    def cross_validated_rows(self, examples, groups, max_folds) -> list[DetectorQuality]:
        rows = []
        for cls in TRAINED:
            results, seconds = out_of_fold_results(
                cls,
                examples,
                groups,
                max_folds=max_folds,
                model=self.model,
                tokenizer=self.tokenizer,
                window=self.args.window,
            )
            self.training_seconds[cls.name].extend(seconds)
            rows.append(
                measure_detector(
                    f"{cls.name} (cross-validated)",
                    examples,
                    results,
                    threshold=None,
                    probabilistic=True,
                )
            )
        results, seconds = out_of_fold_results(
            TokenClassifierDetector,
            examples,
            groups,
            max_folds=max_folds,
            reduce="mean",
            epochs=self.args.classifier_epochs,
        )
        self.training_seconds[TokenClassifierDetector.name].extend(seconds)
        rows.append(
            measure_detector(
                f"{TokenClassifierDetector.name} (cross-validated)",
                examples,
                results,
                threshold=None,
                probabilistic=True,
            )
        )
        return rows

    def halueval(self) -> list[DetectorQuality]:
        dataset = load_halueval(self.args.data / "halueval-qa" / "qa.jsonl", limit=self.args.limit)
        examples = self.features(dataset, "halueval")
        self.counts["HaluEval QA"] = f"{len(dataset) // 2} questions, {len(dataset)} answers"
        groups = [example.record.pair_id for example in examples]
        return self.rule_rows[id(examples)] + self.cross_validated_rows(examples, groups, 5)

    def faithdial(self) -> list[DetectorQuality]:
        dataset = load_faithdial(self.args.data / "faithdial-audit", limit=self.args.limit)
        examples = self.features(dataset, "faithdial")
        positives = sum(record.label for record in dataset.records)
        self.counts["FaithDial"] = (
            f"{len(dataset)} responses from {len(dataset.files)} files ({positives} "
            f"hallucinated); dropped {dataset.dropped}"
        )
        groups = [example.record.source_file for example in examples]
        return self.rule_rows[id(examples)] + self.cross_validated_rows(
            examples, groups, len(dataset.files)
        )


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    device = "CUDA " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    return (
        f"{cpu}, {cores} cores available, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {device}, Python {platform.python_version()}"
    )


def write_results(path: Path, benchmark: Benchmark, sections, wall_seconds: float) -> None:
    args = benchmark.args
    lines = [
        "# Detector benchmark",
        "",
        f"Written by `tests/benchmarks/run_all.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- Machine: {machine_description()}.",
        f"- Scoring model: {args.model}; contexts cut after {args.max_context_tokens} tokens; "
        f"trained detectors use a window of {args.window} tokens.",
        f"- Data sets: {', '.join(args.datasets)}; rows per file: "
        f"{args.limit if args.limit else 'all'}.",
        (
            "- sampling_consistency: left out (--no-sampling)."
            if args.no_sampling
            else f"- sampling_consistency: {args.samples} sampled answers of up to "
            f"{args.sample_tokens} tokens per prompt, temperature 0.7, run on "
            f"{', '.join(args.sampling_datasets)} only"
            + (f", first {args.sampling_limit} responses." if args.sampling_limit else ".")
        ),
        f"- Wall time: {wall_seconds / 60:.1f} min in all.",
    ]
    for name, text in benchmark.counts.items():
        lines.append(f"- {name}: {text}.")
    for name, seconds in benchmark.training_seconds.items():
        if seconds:
            lines.append(
                f"- Training {name}: {max(seconds):.1f} s at most per fit, "
                f"{sum(seconds):.1f} s over {len(seconds)} fits."
            )
    for stage, seconds in benchmark.timings.items():
        lines.append(f"- Time for {stage}: {seconds / 60:.1f} min.")
    lines += [
        "",
        "Word scores are the max over a word's tokens. \"thr\" columns use each detector's own "
        "threshold (for trained detectors, the best-F1 threshold on their training data). "
        'Pairwise accuracy counts a tie as half. "–": not applicable or undefined on this data.',
    ]
    for title, rows, columns in sections:
        lines += ["", f"## {title}", "", format_table(rows, columns=columns)]
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for option in ("limit", "classifier_limit", "sampling_limit"):
        value = getattr(args, option)
        if value is not None and value < 1:
            flag = "--" + option.replace("_", "-")
            raise SystemExit(f"{flag} must be at least 1, got {value}.")
    if not args.data.is_dir():
        raise SystemExit(f"Shared data folder not found: {args.data}. Pass --data.")

    started = time.perf_counter()
    benchmark = Benchmark(args)
    sections = []
    if "xsum" in args.datasets:
        sections += [(title, rows, XSUM_COLUMNS) for title, rows in benchmark.xsum()]
    if "halueval" in args.datasets:
        sections.append(("HaluEval QA", benchmark.halueval(), HALUEVAL_COLUMNS))
    if "faithdial" in args.datasets:
        sections.append(("FaithDial audits", benchmark.faithdial(), FAITHDIAL_COLUMNS))
    wall = time.perf_counter() - started

    write_results(args.output, benchmark, sections, wall)
    logger.info("Wrote %s after %.1f min", args.output, wall / 60)
    print(args.output.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
