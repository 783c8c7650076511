"""The ``halluscope`` command line: dashboard, train, predict, analyze, runs, models.

Every command works headless. The dashboard starts training through this same
CLI (``halluscope train --run-id ...``) in a separate process, so a browser
page never blocks on a training loop.
"""

from __future__ import annotations

import argparse
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

    train = commands.add_parser("train", help="Fine-tune a sequence classifier.")
    _add_train_options(train)
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

    runs = commands.add_parser("runs", help="List the runs in the store.")
    runs.add_argument("--json", action="store_true", help="Print the runs as JSON.")
    _add_home_option(runs)

    commands.add_parser("models", help="List the bundled models.")

    demo = commands.add_parser("demo-data", help="Regenerate the bundled demo data files.")
    demo.add_argument("out_dir", type=Path, nargs="?", help="Folder (default: assets/demo).")
    return parser


def _add_train_options(train: argparse.ArgumentParser) -> None:
    from halluscope.training import ClassifierTrainConfig

    defaults = ClassifierTrainConfig(
        model="minilm", data_path="-", text_column="-", label_column="-"
    )
    train.add_argument("--run-id", help="Start a queued run created by the dashboard.")
    train.add_argument("--model", default="minilm", help="Bundled name, local folder or hub:ID.")
    train.add_argument("--data", type=Path, help="Training file (CSV, TSV, JSONL, JSON, Parquet).")
    train.add_argument("--text-column", help="Column with the text (for pairs: the context).")
    train.add_argument("--text-pair-column", help="Column with the second segment (the claim).")
    train.add_argument("--label-column", help="Column with the labels.")
    train.add_argument(
        "--label-map",
        help="JSON object mapping raw labels to names (null drops a row), or 'faithdial'.",
    )
    train.add_argument("--name", help="Display name of the run.")
    train.add_argument("--epochs", type=float, default=defaults.epochs, help="Training epochs.")
    train.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate, help="Peak learning rate."
    )
    train.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="Examples per step."
    )
    train.add_argument(
        "--weight-decay", type=float, default=defaults.weight_decay, help="AdamW weight decay."
    )
    train.add_argument(
        "--max-length", type=int, default=defaults.max_length, help="Max tokens per example."
    )
    train.add_argument(
        "--early-stopping-patience",
        type=int,
        default=defaults.early_stopping_patience,
        help="Epochs without a lower validation loss before stopping; 0 turns it off.",
    )
    train.add_argument(
        "--validation-fraction",
        type=float,
        default=defaults.validation_fraction,
        help="Share of rows held out for validation.",
    )
    train.add_argument("--seed", type=int, default=defaults.seed, help="Random seed.")
    train.add_argument(
        "--max-steps", type=int, default=defaults.max_steps, help="Stop after N steps (-1: off)."
    )
    train.add_argument("--allow-hub", action="store_true", help="Allow hub model downloads.")
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
        "runs": _cmd_runs,
        "models": _cmd_models,
        "demo-data": _cmd_demo_data,
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
    patience = args.early_stopping_patience
    return ClassifierTrainConfig(
        model=args.model,
        data_path=str(args.data.expanduser().resolve()),
        text_column=text_column,
        text_pair_column=pair_column,
        label_column=label_column,
        label_map=_parse_label_map(args.label_map),
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        max_length=args.max_length,
        early_stopping_patience=patience if patience and patience > 0 else None,
        max_steps=args.max_steps,
        allow_hub=args.allow_hub,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from halluscope.training import ClassifierTrainConfig, StopSignal, run_classifier_training

    store = _store(args)
    if args.run_id:
        record = store.get(args.run_id)
        if record.status != "queued":
            raise ValueError(
                f"Run '{args.run_id}' is {record.status}, not queued; start a new run."
            )
        run_id = record.run_id
        config = ClassifierTrainConfig.from_dict(store.config(run_id))
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
        metrics = run_classifier_training(store, run_id, config, stop_signal=stop_signal)
    except Exception as error:  # noqa: BLE001 - the run is already marked failed
        print(f"halluscope train: run {run_id} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()

    record = store.get(run_id)
    _print_result({"run_id": run_id, "status": record.status, **metrics}, as_json=args.json)
    return 0 if record.status == "completed" else EXIT_FAILED


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


if __name__ == "__main__":
    sys.exit(main())
