"""Command line: ``python -m tinyexit demo``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyexit", description="tinyexit: L2W from scratch")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small multi-exit network on synthetic data (no download)")
    demo.add_argument("--epochs", type=int, default=3)
    demo.add_argument("--n-train", type=int, default=4000)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        run(epochs=args.epochs, n_train=args.n_train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
