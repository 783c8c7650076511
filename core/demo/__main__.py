"""Write the demo files: ``python -m halluscope.demo OUT_DIR [--seed N]``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from halluscope.demo.assets import write_demo_assets


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, write the demo files and return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m halluscope.demo",
        description="Write claims.csv, qa.jsonl and README.md of the demo data.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write into, e.g. assets/demo")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generators (default 0)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_demo_assets(args.out_dir, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
