"""Command line: ``python -m tinyexit demo | train | eval``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import experiment, l2w, models
from .backend import DEVICES
from .experiment import DATASETS, METHODS, RunConfig
from .training import load_checkpoint
from .training.run_lock import RunFolderInUseError


def _train_parser(sub) -> None:
    d = RunConfig()
    p = sub.add_parser("train", help="train a multi-exit network (baseline or L2W), then evaluate it")

    def option(flag: str, help: str = "", **kwargs) -> None:
        """A RunConfig option; its default is None so that --resume can tell which were given."""
        field = flag[2:].replace("-", "_")
        shown = f"(default: {getattr(d, field)})"
        p.add_argument(flag, default=None, help=f"{help} {shown}".strip(), **kwargs)

    option("--arch", f"model preset: {', '.join(sorted(models.list_presets('cifar')))}")
    option("--data", choices=DATASETS)
    p.add_argument(
        "--data-root", default=None, help="folder holding CIFAR (else $TINYEXIT_DATA, else ~/.tinyexit/data)"
    )
    option("--long-tail", "imbalance factor of a long-tailed subset (e.g. 100)", type=float)
    option("--method", choices=METHODS)
    option("--epochs", "training epochs", type=int)
    option("--batch-size", type=int)
    option("--lr", "initial lr of an SGD step on a whole batch", type=float)
    option(
        "--half-step-lr",
        "L2W's half-steps take lr x half/batch ('scaled', the official code) or lr ('same')",
        choices=experiment.HALF_STEP_LRS,
    )
    option(
        "--init",
        "'official': the init the paper's runs trained from; 'he': He init on every convolution",
        choices=models.INITS,
    )
    option("--weight-decay", type=float)
    option("--q", "L2W meta-data allocation budget", type=float)
    option("--delta", "L2W weight perturbation size", type=float)
    option("--meta-lr", "WPN Adam learning rate", type=float)
    option("--meta-interval", "meta step every this many batches", type=int)
    option("--wpn-hidden", type=int)
    option("--wpn-input", choices=l2w.WPN_INPUTS)
    option("--weighting", "L2W or one of the paper's ablations", choices=l2w.WEIGHTINGS)
    option("--meta-objective", choices=l2w.META_OBJECTIVES)
    option(
        "--eval-protocol",
        "exit thresholds from held-out images ('holdout'), or from the augmented training set, "
        "training on every image ('official')",
        choices=experiment.EVAL_PROTOCOLS,
    )
    option(
        "--val-size", "held-out images for the exit thresholds (holdout; on CIFAR at most a tenth)", type=int
    )
    option(
        "--frozen-wpn",
        "with --method l2w --weighting frozen: the folder of a finished L2W run whose WPN is frozen "
        "(the paper's ablation; without it, the initial WPN is frozen)",
    )
    option("--train-subset", "train on this many images only", type=int)
    option("--test-subset", "evaluate on this many test images only", type=int)
    p.add_argument("--no-augment", action="store_true")
    option("--seed", type=int)
    p.add_argument("--device", default=None, choices=DEVICES, help="where to train (default cpu)")
    p.add_argument("--out", required=True, help=f"run folder: {experiment.CHECKPOINT}, metrics.json, plots")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --out with its saved configuration (only --data-root may change; "
        "a larger --epochs extends the run)",
    )
    p.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyexit", description="tinyexit: L2W from scratch")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="baseline vs L2W on a small network, a few minutes on a CPU")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs of each method (default 2)")
    demo.add_argument("--n-train", type=int, default=None, help="training images (default 1280)")
    demo.add_argument("--device", default=None, choices=DEVICES, help="where to train (default cpu)")
    _train_parser(sub)
    ev = sub.add_parser("eval", help="evaluate a checkpoint: metrics.json and plots")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument(
        "--out", default=None, help="folder for metrics.json and plots (default: the checkpoint's)"
    )
    ev.add_argument("--data-root", default=None)
    ev.add_argument("--device", default=None, choices=DEVICES, help="where to evaluate (default: the run's)")
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print(f"\n{_interrupted_message(args)}", file=sys.stderr)
        return 130
    except (
        ValueError,
        TypeError,
        KeyError,
        OSError,
        FloatingPointError,
        RuntimeError,
        RunFolderInUseError,
    ) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _interrupted_message(args) -> str:
    """What an interruption left behind, and the command that continues it."""
    if args.command != "train":
        return "interrupted"
    checkpoint = Path(args.out) / experiment.CHECKPOINT
    if not checkpoint.exists():
        return "interrupted before the first epoch ended: nothing was saved"
    return (
        f"interrupted: the last finished epoch is saved in {checkpoint}; continue with\n"
        f"  python -m tinyexit train --out {args.out} --resume"
    )


def _dispatch(args) -> int:
    if args.command == "demo":
        from .demo import run

        options = (("epochs", args.epochs), ("n_train", args.n_train), ("device", args.device))
        run(**{k: v for k, v in options if v is not None})
    elif args.command == "train":
        fields = {f.name for f in dataclasses.fields(RunConfig)}
        given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
        if args.no_augment:
            given["augment"] = False
        if args.resume:
            cfg = _resumed_config(Path(args.out), given)
        elif (Path(args.out) / experiment.CHECKPOINT).exists():
            raise FileExistsError(
                f"{args.out} already holds a run: add --resume to continue it, or choose another --out"
            )
        else:
            cfg = RunConfig(**given)
        run = experiment.train(
            cfg,
            args.out,
            resume=args.resume,
            progress=sys.stderr.isatty(),
            max_steps=args.max_steps,
            device=args.device,
        )
        experiment.evaluate(run, args.out)
    elif args.command == "eval":
        run = experiment.load_run(args.checkpoint, args.data_root, device=args.device)
        experiment.evaluate(run, args.out or Path(args.checkpoint).parent)
    return 0


def _resumed_config(out: Path, given: dict) -> RunConfig:
    """The saved configuration, with a moved --data-root and a larger --epochs (extending the run).

    Raises:
        ValueError: a given flag would change the run; the message names each such flag.
    """
    checkpoint = out / experiment.CHECKPOINT
    if not checkpoint.exists():
        older = " (its checkpoint.pkl is a pickle of an earlier tinyexit, which is never loaded)"
        raise FileNotFoundError(
            f"--resume: no {experiment.CHECKPOINT} in {out}"
            + (older if (out / "checkpoint.pkl").exists() else "")
        )
    saved = experiment.saved_config(load_checkpoint(checkpoint))
    changed = [
        f"--{name.replace('_', '-')} {value} (the run has {getattr(saved, name)})"
        if name != "augment"
        else "--no-augment (the run augments)"
        for name, value in given.items()
        if name not in experiment.RESUMABLE_CHANGES
        and value != getattr(saved, name)
        and not (name == "epochs" and value > saved.epochs)
    ]
    if changed:
        raise ValueError(
            "--resume continues the saved run unchanged (only --data-root may change, and --epochs "
            "may grow to extend it), "
            "but these flags would change it: " + ", ".join(changed)
        )
    return dataclasses.replace(
        saved, data_root=given.get("data_root") or saved.data_root, epochs=given.get("epochs", saved.epochs)
    )


if __name__ == "__main__":
    sys.exit(main())
