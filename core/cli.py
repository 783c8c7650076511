"""The ``halluscope`` command: dashboard, train, predict, analyze, evaluate, answer, report, runs.

Every command works headless. The dashboard starts training through this same
CLI (``halluscope train --run-id ...``) in a separate process, so a browser
page never blocks on a training loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from halluscope import __version__
from halluscope.paths import HOME_ENV

logger = logging.getLogger("halluscope.cli")

EXIT_USAGE = 2
EXIT_FAILED = 1

TRAIN_TASKS = ("classification", "generation")
DEFAULT_TRAIN_MODELS = {"classification": "minilm", "generation": "smollm2-135m"}

# Options of `train` shared by both tasks: flag, type and help text. Their
# defaults come from each task's settings class.
_SHARED_TRAIN_OPTIONS = (
    ("--epochs", float, "Training epochs"),
    ("--learning-rate", float, "Peak learning rate"),
    ("--batch-size", int, "Examples per step"),
    ("--weight-decay", float, "AdamW weight decay"),
    ("--max-length", int, "Max tokens per example"),
    (
        "--early-stopping-patience",
        int,
        "Epochs without a lower validation loss before stopping; 0 turns it off",
    ),
    ("--validation-fraction", float, "Share of rows held out for validation"),
    ("--seed", int, "Random seed"),
    ("--max-steps", int, "Stop after N optimisation steps, -1 for no limit"),
)


def _add_home_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help=f"Run store folder (default: ${HOME_ENV} or the per-user data folder).",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``halluscope`` command."""
    parser = argparse.ArgumentParser(
        prog="halluscope",
        description="Find and explain hallucinations of small language models.",
    )
    parser.add_argument("--version", action="version", version=f"halluscope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages.")
    commands = parser.add_subparsers(dest="command", required=True)

    dashboard = commands.add_parser("dashboard", help="Start the Streamlit dashboard.")
    dashboard.add_argument("--port", type=int, default=8501, help="Port to serve on.")
    dashboard.add_argument(
        "--address", default="localhost", help="Address to bind (default: localhost only)."
    )
    _add_home_option(dashboard)

    train = commands.add_parser("train", help="Fine-tune a sequence classifier or a causal LM.")
    _add_train_options(train)
    _add_generation_train_options(train)
    _add_home_option(train)

    predict = commands.add_parser(
        "predict", help="Predict with a finished run, on its validation split or a file."
    )
    predict.add_argument("run_id", help="Id of a completed classification run.")
    predict.add_argument(
        "--data", type=Path, help="File to predict on (default: validation split)."
    )
    predict.add_argument("--text-column", help="Column with the first text segment.")
    predict.add_argument("--text-pair-column", help="Column with the second text segment.")
    predict.add_argument("--label-column", help="Optional column with gold labels.")
    predict.add_argument("--batch-size", type=int, default=32, help="Examples per batch.")
    predict.add_argument("-o", "--output", type=Path, help="Write the predictions to this CSV.")
    predict.add_argument("--json", action="store_true", help="Print a JSON summary on stdout.")
    _add_home_option(predict)

    analyze = commands.add_parser(
        "analyze",
        help="Score every token of given responses with a causal LM and its detectors.",
    )
    analyze.add_argument("data", type=Path, help="JSONL, JSON, CSV or Parquet of responses.")
    analyze.add_argument("--model", default="smollm2-135m", help="Causal LM to score with.")
    analyze.add_argument("--context-key", help="Column with the context (default: guessed).")
    analyze.add_argument("--question-key", help="Column with the question (default: guessed).")
    analyze.add_argument("--response-key", help="Column with the response (default: guessed).")
    analyze.add_argument(
        "--detectors",
        help="Comma-separated detector names (default: every generation detector).",
    )
    analyze.add_argument("--limit", type=int, help="Score only the first N rows.")
    analyze.add_argument("--batch-size", type=int, default=4, help="Responses per forward pass.")
    analyze.add_argument(
        "--max-context-tokens",
        type=int,
        default=1024,
        help="Contexts longer than this many tokens are cut from the end.",
    )
    analyze.add_argument(
        "-o", "--output", type=Path, required=True, help="Write one JSON object per row here."
    )
    analyze.add_argument("--allow-hub", action="store_true", help="Allow hub model downloads.")

    evaluate = commands.add_parser(
        "evaluate",
        help="Measure generation detectors on labelled data and print detectors x metrics.",
    )
    evaluate.add_argument(
        "data", type=Path, nargs="+", help="Labelled files; for faithdial also a folder of CSVs."
    )
    evaluate.add_argument(
        "--dataset", required=True, choices=("xsum", "halueval", "faithdial"), help="File format."
    )
    evaluate.add_argument(
        "--detectors",
        help="Comma-separated detector names (default: every detector not marked expensive, "
        "and the trained ones with --train-on).",
    )
    evaluate.add_argument(
        "--train-on",
        type=Path,
        nargs="+",
        help="Labelled files of the same format to train lookback_lens, stacked_ensemble and "
        "token_classifier on.",
    )
    evaluate.add_argument(
        "--trained",
        type=Path,
        action="append",
        default=[],
        help="A trained detector: a saved JSON file, or a token_classifier folder; repeat the "
        "option for several.",
    )
    evaluate.add_argument(
        "--detector-dir", type=Path, help="Save the detectors trained with --train-on here."
    )
    evaluate.add_argument("--limit", type=int, help="Use only the first N rows of each file.")
    evaluate.add_argument("--model", default="smollm2-135m", help="Causal LM to score with.")
    evaluate.add_argument(
        "--max-context-tokens", type=int, default=1024, help="Cut contexts after N tokens."
    )
    evaluate.add_argument(
        "--window", type=int, default=8, help="Tokens per window of trained detectors' features."
    )
    evaluate.add_argument("-o", "--output", type=Path, help="Also write the metrics as JSON here.")
    evaluate.add_argument("--allow-hub", action="store_true", help="Allow hub model downloads.")

    report = commands.add_parser(
        "report", help="Export a self-contained HTML report of a run (opens offline)."
    )
    report.add_argument("run_id", help="Id of the run to report on.")
    report.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write.")
    report.add_argument(
        "--examples",
        type=int,
        default=3,
        help="Examples explained with attention and attributions (default 3; 0: none).",
    )
    report.add_argument(
        "--example-row",
        type=int,
        action="append",
        dest="example_rows",
        help="Data row number of an example to explain (repeatable; default: top suspects).",
    )
    report.add_argument(
        "--suspects", type=int, default=10, help="Rows in the suspected-hallucination table."
    )
    report.add_argument(
        "--method", default="integrated_gradients", help="Attribution method of the examples."
    )
    _add_home_option(report)

    answer = commands.add_parser(
        "answer",
        help="Answer the held-out questions of a generation run and flag every answer token.",
    )
    answer.add_argument("run_id", help="Id of a completed generation run.")
    answer.add_argument("--limit", type=int, help="Answer only the first N held-out questions.")
    answer.add_argument(
        "--detectors",
        help="Comma-separated detector names (default: every generation detector that is "
        "not marked expensive).",
    )
    answer.add_argument(
        "--max-new-tokens", type=int, default=48, help="Maximum tokens per answer (default: 48)."
    )
    answer.add_argument(
        "-o", "--output", type=Path, help="Also write one JSON object per answer here."
    )
    _add_home_option(answer)

    runs = commands.add_parser("runs", help="List the runs in the store.")
    runs.add_argument("--json", action="store_true", help="Print the runs as JSON.")
    _add_home_option(runs)

    commands.add_parser("models", help="List the bundled models.")

    demo = commands.add_parser("demo-data", help="Regenerate the bundled demo data files.")
    demo.add_argument("out_dir", type=Path, nargs="?", help="Folder (default: assets/demo).")

    noise = commands.add_parser(
        "inject-noise",
        help="Write a copy of a labelled file with a share of its labels flipped "
        "(column label_flipped marks them).",
    )
    noise.add_argument("data", type=Path, help="Labelled file (CSV, TSV, JSONL, JSON, Parquet).")
    noise.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write.")
    noise.add_argument("--fraction", type=float, default=0.2, help="Share of rows to flip.")
    noise.add_argument("--seed", type=int, default=0, help="Seed of the rows and new labels.")
    noise.add_argument("--label-column", default="label", help="Column with the labels.")

    label_errors = commands.add_parser(
        "label-errors",
        help="Rank the training rows of a classification run by how likely their label is wrong.",
    )
    label_errors.add_argument("run_id", help="A completed classification run.")
    label_errors.add_argument("-o", "--output", type=Path, help="Write the ranking as CSV.")
    label_errors.add_argument("--folds", type=int, default=5, help="Cross-validation folds.")
    _add_home_option(label_errors)
    return parser


def _option_name(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def _train_defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the defaults of the shared train options for classification and generation."""
    from halluscope.training import CausalLMTrainConfig, ClassifierTrainConfig
    from halluscope.training.causal_config import DEFAULT_LEARNING_RATES

    def defaults(config_class: type) -> dict[str, Any]:
        values = {
            field.name: field.default
            for field in dataclasses.fields(config_class)
            if field.default is not dataclasses.MISSING
        }
        values["early_stopping_patience"] = values["early_stopping_patience"] or "off"
        return values

    generation = defaults(CausalLMTrainConfig)
    generation["learning_rate"] = (
        f"{DEFAULT_LEARNING_RATES['lora']:g} with LoRA, {DEFAULT_LEARNING_RATES['full']:g} in full"
    )
    return defaults(ClassifierTrainConfig), generation


def _given_train_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return the shared train options that were given on the command line, by settings name."""
    given = {}
    for flag, _, _ in _SHARED_TRAIN_OPTIONS:
        name = _option_name(flag)
        value = getattr(args, name)
        if value is not None:
            given[name] = value
    if "early_stopping_patience" in given and given["early_stopping_patience"] <= 0:
        given["early_stopping_patience"] = None
    return given


def _add_generation_train_options(train: argparse.ArgumentParser) -> None:
    generation = train.add_argument_group("generation (--task generation)")
    generation.add_argument("--prompt-column", help="Column with the question or instruction.")
    generation.add_argument("--answer-column", help="Column with the reference answer.")
    generation.add_argument("--context-column", help="Optional column with the grounding text.")
    generation.add_argument(
        "--method",
        choices=("lora", "full"),
        default="lora",
        help="Train LoRA adapters or every weight (default: lora).",
    )
    generation.add_argument("--lora-rank", type=int, help="Rank of each LoRA update (default: 8).")
    generation.add_argument("--lora-alpha", type=float, help="LoRA scaling alpha (default: 16).")
    generation.add_argument(
        "--lora-target-modules",
        help="Comma-separated names of the layers that get adapters (default: "
        "q_proj,k_proj,v_proj,o_proj).",
    )
    generation.add_argument(
        "--merge", action="store_true", help="Also save the LoRA adapter merged into the weights."
    )
    generation.add_argument(
        "--probe-knowledge",
        action="store_true",
        help="Before training, ask the base model every question and sort the rows into known, "
        "maybe known and unknown facts (stored in knowledge.json).",
    )
    generation.add_argument(
        "--probe-samples",
        type=int,
        help="Sampled answers per question in the knowledge probe, besides the greedy one "
        "(default: 4).",
    )
    generation.add_argument(
        "--answer-dynamics",
        action="store_true",
        help="Record each training answer's loss before training and at every epoch end "
        "(stored in answer_dynamics.json; one forward pass over the training split each).",
    )


def _add_train_options(train: argparse.ArgumentParser) -> None:
    train.add_argument("--run-id", help="Start a queued run created by the dashboard.")
    train.add_argument(
        "--task",
        choices=TRAIN_TASKS,
        default="classification",
        help="classification fine-tunes an encoder on labelled texts; generation fine-tunes "
        "a causal LM on prompt-answer pairs (default: classification).",
    )
    train.add_argument(
        "--model",
        help="Bundled name, local folder or hub:ID (default: minilm for classification, "
        "smollm2-135m for generation).",
    )
    train.add_argument("--data", type=Path, help="Training file (CSV, TSV, JSONL, JSON, Parquet).")
    train.add_argument("--text-column", help="Column with the text (for pairs: the context).")
    train.add_argument("--text-pair-column", help="Column with the second segment (the claim).")
    train.add_argument("--label-column", help="Column with the labels.")
    train.add_argument(
        "--label-map",
        help="JSON object mapping raw labels to names (null drops a row), or 'faithdial'.",
    )
    train.add_argument("--name", help="Display name of the run.")
    classification, generation = _train_defaults()
    for flag, value_type, text in _SHARED_TRAIN_OPTIONS:
        name = _option_name(flag)
        train.add_argument(
            flag,
            type=value_type,
            default=None,
            help=f"{text} (default: {classification[name]} for classification, "
            f"{generation[name]} for generation).",
        )
    mitigation = train.add_argument_group("classification mitigations")
    mitigation.add_argument(
        "--label-smoothing",
        type=float,
        help="Share of the target probability spread over all classes, in [0, 1) (default: 0).",
    )
    mitigation.add_argument(
        "--dropout",
        type=float,
        help="Dropout probability of every dropout layer, in [0, 1) (default: the model's own).",
    )
    mitigation.add_argument(
        "--drop-label-issues",
        action="store_true",
        help="Leave out the training rows that the label-error ranking marks as likely wrong.",
    )
    mitigation.add_argument(
        "--keep-last-epoch",
        action="store_true",
        help="Keep the last epoch instead of the one with the lowest validation loss.",
    )
    mitigation.add_argument(
        "--no-dynamics",
        action="store_true",
        help="Do not record per-example training dynamics (saves one pass over the "
        "training split per epoch).",
    )
    train.add_argument("--allow-hub", action="store_true", help="Allow hub model downloads.")
    train.add_argument(
        "--allow-pickle",
        action="store_true",
        help="Accept a local model folder with pickle (.bin) weights only. Unpickling can "
        "run code, so use it only for folders you trust.",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="Continue a failed or cancelled classification run from its last checkpoint.",
    )
    train.add_argument("--json", action="store_true", help="Print final metrics as JSON.")


def main(argv: list[str] | None = None) -> int:
    """Run the ``halluscope`` command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

    from halluscope.data import DataError
    from halluscope.models import ModelError
    from halluscope.runs import RunNotFoundError

    handlers = {
        "dashboard": _cmd_dashboard,
        "train": _cmd_train,
        "predict": _cmd_predict,
        "analyze": _cmd_analyze,
        "evaluate": _cmd_evaluate,
        "answer": _cmd_answer,
        "report": _cmd_report,
        "runs": _cmd_runs,
        "models": _cmd_models,
        "demo-data": _cmd_demo_data,
        "inject-noise": _cmd_inject_noise,
        "label-errors": _cmd_label_errors,
    }
    try:
        return handlers[args.command](args)
    except (DataError, ModelError, RunNotFoundError, ValueError, FileNotFoundError) as error:
        print(f"halluscope {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, ValueError) else EXIT_FAILED


def _store(args: argparse.Namespace):
    from halluscope.runs import RunStore

    return RunStore(args.home)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    if not app.is_file():
        raise FileNotFoundError(
            f"The dashboard app was not found at {app}. Run halluscope from a checkout "
            "installed with `make setup` (pip install -e .)."
        )
    env = dict(os.environ)
    if args.home:
        env[HOME_ENV] = str(args.home.expanduser().resolve())
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        # In MiB; the data reader's own limit is 200 MB (DEFAULT_MAX_BYTES).
        "--server.maxUploadSize",
        "200",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]
    logger.info("Starting the dashboard on http://%s:%d", args.address, args.port)

    # The CLI process becomes the Streamlit server, so a signal sent to
    # `halluscope dashboard` (Ctrl+C, a service manager's SIGTERM) stops the server.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)
    return 0  # not reached: execve replaces this process


def _parse_label_map(value: str | None) -> dict[str, str | None] | None:
    if not value:
        return None
    if value.strip().lower() == "faithdial":
        from halluscope.data import FAITHDIAL_BEGIN_LABEL_MAP

        return dict(FAITHDIAL_BEGIN_LABEL_MAP)
    try:
        mapping = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(
            f'--label-map must be a JSON object such as \'{{"yes": "supported"}}\' '
            f"or 'faithdial'; got {value!r} ({error.msg})."
        ) from None
    if not isinstance(mapping, dict):
        raise ValueError(f"--label-map must be a JSON object, got {type(mapping).__name__}.")
    return {str(key): (None if target is None else str(target)) for key, target in mapping.items()}


def _train_config_from_args(args: argparse.Namespace):
    from halluscope.data import guess_classification_schema, read_table
    from halluscope.training import ClassifierTrainConfig

    if args.data is None:
        raise ValueError("train needs --data FILE (or --run-id of a queued run).")
    text_column, pair_column, label_column = (
        args.text_column,
        args.text_pair_column,
        args.label_column,
    )
    if not (text_column and label_column):
        guessed = guess_classification_schema(read_table(args.data).frame)
        text_column = text_column or guessed.text
        label_column = label_column or guessed.label
        if pair_column is None and not args.text_column:
            pair_column = guessed.text_pair
        logger.info(
            "Using columns text=%s, text_pair=%s, label=%s (pass --text-column, "
            "--text-pair-column and --label-column to change them).",
            text_column,
            pair_column,
            label_column,
        )
    return ClassifierTrainConfig(
        model=args.model or DEFAULT_TRAIN_MODELS["classification"],
        data_path=str(args.data.expanduser().resolve()),
        text_column=text_column,
        text_pair_column=pair_column,
        label_column=label_column,
        label_map=_parse_label_map(args.label_map),
        allow_hub=args.allow_hub,
        **_given_train_options(args),
        **_mitigation_options(args),
    )


def _mitigation_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return the classification mitigation settings given on the command line."""
    options: dict[str, Any] = {
        "drop_label_issues": args.drop_label_issues,
        "keep_best_epoch": not args.keep_last_epoch,
        "record_dynamics": not args.no_dynamics,
    }
    if args.label_smoothing is not None:
        options["label_smoothing"] = args.label_smoothing
    if args.dropout is not None:
        options["dropout"] = args.dropout
    return options


def _cmd_train(args: argparse.Namespace) -> int:
    from halluscope.training import (
        CausalLMTrainConfig,
        ClassifierTrainConfig,
        StopSignal,
        run_causal_lm_training,
        run_classifier_training,
    )

    store = _store(args)
    resume = bool(args.resume)
    if resume:
        run_id, config = _run_to_resume(store, args)
    elif args.run_id:
        record = store.get(args.run_id)
        if record.status != "queued":
            raise ValueError(
                f"Run '{args.run_id}' is {record.status}, not queued; start a new run."
            )
        run_id = record.run_id
        config_class = CausalLMTrainConfig if record.kind == "generation" else ClassifierTrainConfig
        config = config_class.from_dict(store.config(run_id))
    else:
        if args.task == "generation":
            config = _generation_config_from_args(args)
        else:
            config = _train_config_from_args(args)
        run_id = store.create_run(
            kind=config.kind,
            model=config.model,
            data=config.data_path,
            config=config.to_dict(),
            name=args.name,
        ).run_id

    log_handler = logging.FileHandler(store.run_dir(run_id) / "log.txt", encoding="utf-8")
    log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(log_handler)
    logger.info("Run %s: training in %s", run_id, store.run_dir(run_id))

    stop_signal = StopSignal()
    stop_signal.install()
    try:
        if isinstance(config, CausalLMTrainConfig):
            metrics = run_causal_lm_training(store, run_id, config, stop_signal=stop_signal)
        else:
            metrics = run_classifier_training(
                store,
                run_id,
                config,
                stop_signal=stop_signal,
                resume=resume,
                allow_pickle=args.allow_pickle,
            )
    except Exception as error:  # noqa: BLE001 - the run is already marked failed
        print(f"halluscope train: run {run_id} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()

    record = store.get(run_id)
    _print_result({"run_id": run_id, "status": record.status, **metrics}, as_json=args.json)
    return 0 if record.status == "completed" else EXIT_FAILED


def _generation_config_from_args(args: argparse.Namespace):
    from halluscope.data import guess_generation_schema, read_table
    from halluscope.training import CausalLMTrainConfig

    if args.data is None:
        raise ValueError("train --task generation needs --data FILE (or --run-id of a queued run).")
    if args.allow_pickle:
        raise ValueError("--allow-pickle applies to classification runs only.")
    prompt_column, answer_column, context_column = (
        args.prompt_column,
        args.answer_column,
        args.context_column,
    )
    if not (prompt_column and answer_column):
        guessed = guess_generation_schema(read_table(args.data).frame)
        prompt_column = prompt_column or guessed.prompt
        answer_column = answer_column or guessed.answer
        if context_column is None:
            context_column = guessed.context
        logger.info(
            "Using columns prompt=%s, answer=%s, context=%s (pass --prompt-column, "
            "--answer-column and --context-column to change them).",
            prompt_column,
            answer_column,
            context_column,
        )

    lora = {
        name: getattr(args, name)
        for name in ("lora_rank", "lora_alpha")
        if getattr(args, name) is not None
    }
    if args.lora_target_modules:
        lora["lora_target_modules"] = tuple(args.lora_target_modules.split(","))
    probe = {"probe_samples": args.probe_samples} if args.probe_samples is not None else {}
    return CausalLMTrainConfig(
        model=args.model or DEFAULT_TRAIN_MODELS["generation"],
        data_path=str(args.data.expanduser().resolve()),
        prompt_column=prompt_column,
        answer_column=answer_column,
        context_column=context_column or None,
        method=args.method,
        merge=args.merge,
        allow_hub=args.allow_hub,
        probe_knowledge=args.probe_knowledge,
        answer_dynamics=args.answer_dynamics,
        **lora,
        **probe,
        **_given_train_options(args),
    )


def _run_to_resume(store, args: argparse.Namespace):
    """Return ``(run_id, config)`` of the run that ``--resume`` names, after checking it."""
    from halluscope.runs import process_is_alive
    from halluscope.training import ClassifierTrainConfig

    if args.run_id:
        raise ValueError("Pass either --resume RUN_ID or --run-id RUN_ID, not both.")
    store.reap_stale_runs()
    record = store.get(args.resume)
    if record.kind != "classification":
        raise ValueError(
            f"Run '{record.run_id}' is a {record.kind} run; --resume continues "
            "classification runs only."
        )
    if record.is_active and process_is_alive(record.pid):
        raise ValueError(f"Run '{record.run_id}' is still {record.status}; it cannot be resumed.")
    if record.status == "completed":
        raise ValueError(f"Run '{record.run_id}' already completed; there is nothing to resume.")
    store.clear_cancel(record.run_id)
    return record.run_id, ClassifierTrainConfig.from_dict(store.config(record.run_id))


def _print_result(result: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, default=str))
        return
    width = max(len(key) for key in result)
    for key, value in result.items():
        formatted = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {formatted}")


def _cmd_predict(args: argparse.Namespace) -> int:
    from halluscope.workflows import predict_run

    store = _store(args)
    result = predict_run(
        store,
        args.run_id,
        data_path=args.data,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        batch_size=args.batch_size,
    )
    if args.output:
        result.table.to_csv(args.output, index=False)
        logger.info("Wrote %d predictions to %s", len(result.table), args.output)
    _print_result(result.summary, as_json=args.json)
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from halluscope.data import read_table
    from halluscope.inference import analyze_records
    from halluscope.models import load_causal_lm, load_tokenizer

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}.")
    table = read_table(args.data)
    records = table.frame.to_dict("records")
    if args.limit is not None:
        records = records[: args.limit]
    detectors = [name.strip() for name in args.detectors.split(",")] if args.detectors else None

    model = load_causal_lm(args.model, allow_hub=args.allow_hub)
    tokenizer = load_tokenizer(args.model, allow_hub=args.allow_hub)
    logger.info("Scoring %d responses from %s with %s.", len(records), args.data, args.model)

    def report_progress(done: int, total: int) -> None:
        logger.info("Scored %d of %d responses.", done, total)

    results = analyze_records(
        model,
        tokenizer,
        records,
        detectors=detectors,
        batch_size=args.batch_size,
        context_key=args.context_key,
        question_key=args.question_key,
        response_key=args.response_key,
        max_context_tokens=args.max_context_tokens,
        progress=report_progress,
    )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as stream:
        for result in results:
            stream.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
    flagged = {
        name: sum(bool(result["detectors"][name]["flagged"]) for result in results)
        for name in (results[0]["detectors"] if results else {})
    }
    _print_result(
        {
            "rows": len(results),
            "output": str(args.output),
            **{f"flagged_{k}": v for k, v in flagged.items()},
        },
        as_json=False,
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from halluscope.evaluate.datasets import load_dataset
    from halluscope.evaluate.runner import format_table
    from halluscope.evaluate.workflow import evaluate_labelled_data
    from halluscope.models import load_causal_lm, load_tokenizer

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}.")
    dataset = load_dataset(args.dataset, args.data, limit=args.limit)
    train_dataset = None
    if args.train_on:
        train_dataset = load_dataset(args.dataset, args.train_on, limit=args.limit)
    detectors = [name.strip() for name in args.detectors.split(",")] if args.detectors else None

    model = load_causal_lm(args.model, allow_hub=args.allow_hub)
    tokenizer = load_tokenizer(args.model, allow_hub=args.allow_hub)
    logger.info("Evaluating detectors on %d labelled responses.", len(dataset))

    def report_progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            logger.info("Scored %d of %d responses.", done, total)

    outcome = evaluate_labelled_data(
        model,
        tokenizer,
        dataset,
        detectors=detectors,
        trained_paths=args.trained,
        train_dataset=train_dataset,
        detector_dir=args.detector_dir,
        window=args.window,
        max_context_tokens=args.max_context_tokens,
        progress=report_progress,
    )
    print(format_table(outcome.rows))
    for path in outcome.saved:
        print(f"saved trained detector: {path}")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "dataset": args.dataset,
            "files": [str(path) for path in args.data],
            "responses": len(dataset),
            "dropped": dataset.dropped,
            "detectors": [row.to_json() for row in outcome.rows],
        }
        args.output.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from halluscope.report import ReportOptions, write_report

    options = ReportOptions(
        max_suspects=args.suspects,
        explained_examples=args.examples,
        example_rows=tuple(args.example_rows) if args.example_rows else None,
        method=args.method,
    )

    def report_progress(done: int, total: int) -> None:
        logger.info("Report: step %d of %d done.", done, total)

    path = write_report(
        _store(args), args.run_id, args.output, options=options, progress=report_progress
    )
    print(path)
    return 0


def _cmd_answer(args: argparse.Namespace) -> int:
    from halluscope.answers import ANSWERS_FILE, GenerationSettings, answer_run

    store = _store(args)
    detectors = [name.strip() for name in args.detectors.split(",")] if args.detectors else None

    def report_progress(done: int, total: int) -> None:
        logger.info("Step %d of %d (generating answers, then running the detectors).", done, total)

    records = answer_run(
        store,
        args.run_id,
        limit=args.limit,
        detectors=detectors,
        settings=GenerationSettings(max_new_tokens=args.max_new_tokens),
        progress=report_progress,
    )
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w", encoding="utf-8") as stream:
            for record in records:
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    flagged = {
        name: sum(bool(record["detectors"][name]["flagged"]) for record in records)
        for name in (records[0]["detectors"] if records else {})
    }
    _print_result(
        {
            "answers": len(records),
            "stored": str(store.run_dir(args.run_id) / ANSWERS_FILE),
            **{f"flagged_{name}": count for name, count in flagged.items()},
            **_hallucination_rates_by_group(store, args.run_id, records),
        },
        as_json=False,
    )
    return 0


def _hallucination_rates_by_group(
    store, run_id: str, records: list[dict[str, Any]]
) -> dict[str, str]:
    """Return "wrong/answered" per knowledge category, or nothing when the run has no probe."""
    from halluscope.training.knowledge import hallucination_by_group, load_knowledge

    probe = load_knowledge(store.run_dir(run_id))
    if probe is None:
        return {}
    rates = hallucination_by_group(probe, records)
    return {
        f"hallucinated_{row.category}": f"{row.hallucinated}/{row.answered}"
        for row in rates.itertuples()
    }


def _cmd_runs(args: argparse.Namespace) -> int:
    store = _store(args)
    store.reap_stale_runs()
    records = store.list_runs()
    if args.json:
        print(json.dumps([record.__dict__ for record in records], default=str))
        return 0
    for record in records:
        accuracy = record.metrics.get("accuracy")
        formatted = f"{accuracy:.3f}" if isinstance(accuracy, float) else "-"
        print(
            f"{record.run_id}  {record.status:<9}  {record.model:<14} "
            f"acc={formatted}  {record.name}"
        )
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from halluscope.models import BUNDLED_MODELS

    for model in BUNDLED_MODELS.values():
        print(f"{model.name:<14} {model.family:<10} {model.description} (package {model.package})")
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from halluscope.demo import write_demo_assets

    out_dir = args.out_dir or Path(__file__).resolve().parent.parent / "assets" / "demo"
    for name, path in write_demo_assets(out_dir).items():
        print(f"{name}: {path}")
    return 0


def _cmd_inject_noise(args: argparse.Namespace) -> int:
    from halluscope.data import read_table
    from halluscope.demo import inject_label_noise

    frame = read_table(args.data).frame
    noisy, flipped = inject_label_noise(
        frame, args.fraction, seed=args.seed, label_column=args.label_column
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    noisy.to_csv(args.output, index=False)
    print(f"Flipped {len(flipped)} of {len(frame)} labels; wrote {args.output}.")
    return 0


def _cmd_label_errors(args: argparse.Namespace) -> int:
    from halluscope.training.label_errors import rank_run_label_issues

    issues, examples = rank_run_label_issues(_store(args), args.run_id, folds=args.folds)
    frame = issues.to_frame(examples.texts, examples.text_pairs)
    if args.output:
        frame.to_csv(args.output, index=False)
    summary = {"rows": len(issues), "likely_errors": int(issues.is_issue.sum())}
    measured = issues.precision_recall_at_k()
    if measured is not None:
        summary["flipped"] = int(issues.flipped.sum())
        summary["precision_at_k"], summary["recall_at_k"] = measured
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
