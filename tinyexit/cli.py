"""Command line: ``python -m tinyexit demo | train | eval``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import experiment, l2w, models
from .experiment import DATASETS, METHODS, RunConfig


def _train_parser(sub) -> None:
    d = RunConfig()
    p = sub.add_parser(
        "train",
        help="train a multi-exit network (baseline or L2W), then evaluate it",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--arch", default=d.arch, help=f"model preset: {', '.join(sorted(models.PRESETS))}")
    p.add_argument("--data", default=d.data, choices=DATASETS)
    p.add_argument(
        "--data-root", default=None, help="folder holding CIFAR (else $TINYEXIT_DATA, else ~/.tinyexit/data)"
    )
    p.add_argument(
        "--long-tail", type=float, default=None, help="imbalance factor of a long-tailed subset (e.g. 100)"
    )
    p.add_argument("--method", default=d.method, choices=METHODS)
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"training epochs (default {d.epochs}; with --resume, the saved run's)",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="initial lr of an SGD step on a whole batch")
    p.add_argument(
        "--half-step-lr",
        default=d.half_step_lr,
        choices=experiment.HALF_STEP_LRS,
        help="L2W's half-steps take lr x half/batch ('scaled', the official code) or lr ('same')",
    )
    p.add_argument(
        "--init",
        default=d.init,
        choices=models.INITS,
        help="'official': the init the paper's runs trained from; 'he': He init on every convolution",
    )
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--q", type=float, default=d.q, help="L2W meta-data allocation budget")
    p.add_argument("--delta", type=float, default=d.delta, help="L2W weight perturbation size")
    p.add_argument("--meta-lr", type=float, default=d.meta_lr, help="WPN Adam learning rate")
    p.add_argument(
        "--meta-interval", type=int, default=d.meta_interval, help="meta step every this many batches"
    )
    p.add_argument("--wpn-hidden", type=int, default=d.wpn_hidden)
    p.add_argument("--wpn-input", default=d.wpn_input, choices=l2w.WPN_INPUTS)
    p.add_argument(
        "--weighting", default=d.weighting, choices=l2w.WEIGHTINGS, help="L2W or one of the paper's ablations"
    )
    p.add_argument("--meta-objective", default=d.meta_objective, choices=l2w.META_OBJECTIVES)
    p.add_argument(
        "--eval-protocol",
        default=d.eval_protocol,
        choices=experiment.EVAL_PROTOCOLS,
        help="exit thresholds from held-out images ('holdout'), or from the augmented training set, "
        "training on every image ('official')",
    )
    p.add_argument(
        "--val-size", type=int, default=d.val_size, help="held-out images for the exit thresholds (holdout)"
    )
    p.add_argument(
        "--frozen-wpn",
        default=None,
        help="with --method l2w --weighting frozen: the folder of a finished L2W run whose WPN is frozen "
        "(the paper's ablation; without it, the initial WPN is frozen)",
    )
    p.add_argument("--train-subset", type=int, default=None, help="train on this many images only")
    p.add_argument("--test-subset", type=int, default=None, help="evaluate on this many test images only")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", required=True, help="run folder: checkpoint.pkl, metrics.json, plots")
    p.add_argument(
        "--resume", action="store_true", help="continue the run saved in --out with its saved configuration"
    )
    p.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyexit", description="tinyexit: L2W from scratch")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="baseline vs L2W on a small network, a few minutes on a CPU")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs of each method (default 3)")
    demo.add_argument("--n-train", type=int, default=None, help="training images (default 2000)")
    _train_parser(sub)
    ev = sub.add_parser("eval", help="evaluate a checkpoint: metrics.json and plots")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument(
        "--out", default=None, help="folder for metrics.json and plots (default: the checkpoint's)"
    )
    ev.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    if args.command == "demo":
        from .demo import run

        run(**{k: v for k, v in (("epochs", args.epochs), ("n_train", args.n_train)) if v is not None})
    elif args.command == "train":
        fields = {f.name for f in dataclasses.fields(RunConfig)}
        values = {k: v for k, v in vars(args).items() if k in fields and v is not None}
        cfg = RunConfig(**values, augment=not args.no_augment)
        if args.resume:
            cfg = RunConfig(epochs=args.epochs) if args.epochs is not None else None
            if not (Path(args.out) / experiment.CHECKPOINT).exists():
                raise FileNotFoundError(f"--resume: no {experiment.CHECKPOINT} in {args.out}")
        try:
            run = experiment.train(
                cfg, args.out, resume=args.resume, progress=sys.stderr.isatty(), max_steps=args.max_steps
            )
        except FileExistsError:
            raise FileExistsError(
                f"{args.out} already holds a run: add --resume to continue it, or choose another --out"
            ) from None
        experiment.evaluate(run, args.out)
    elif args.command == "eval":
        run = experiment.load_run(args.checkpoint, args.data_root)
        experiment.evaluate(run, args.out or Path(args.checkpoint).parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
