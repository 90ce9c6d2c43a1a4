"""Baseline against L2W on CIFAR-10, from one command (the paper's comparison at a chosen scale).

    python bench/reproduce.py --out runs/reproduce [--archs msdnet3_small ranet4_small] [--seeds 0 1 2]
        [--epochs 300] [--n-train N] [--batch-size 64] [--long-tail-arch msdnet3_small]
        [--methods baseline l2w frozen]
    python bench/reproduce.py --quick --out /tmp/reproduce-quick      # tiny settings, about a minute

For every architecture, method and seed it trains and evaluates one run with
``tinyexit.experiment`` (same schedule, budget and seeds for every method), then the long-tailed
CIFAR-10 setting (imbalance factor 100) for one architecture. The methods are the baseline, L2W,
L2W's fair control "frozen" (the same two SGD steps per batch, weighted by a WPN that is never
trained), which tells the learned weighting apart from the extra backbone updates, and the paper's
frozen ablation "frozen_trained" (the same, weighted by the WPN of the finished L2W run of that
setting and seed). The recipe follows the official code unless told otherwise: each of L2W's
half-steps takes lr x half/batch (``--half-step-lr``), the models start from the initialisation
the paper's runs had (``--init``), and the exit thresholds come from a held-out split
(``--eval-protocol holdout``) or, as the official code, from the augmented training set
(``--eval-protocol official``, training on every image). Under ``--out``
it writes
``runs/<training set>/<arch>/<method>/seed<seed>/`` (each run's checkpoint, metrics.json, plots),
``metrics.json`` (the summary: per-exit accuracy and accuracy at matched Mul-Adds, mean and std
over seeds, time per epoch, configuration), ``summary.md`` and ``plots/``, and prints the markdown
tables. Run again with the same arguments to resume: finished runs are reused, unfinished ones
continued from their last epoch; a folder holding a different run is an error, never overwritten.
"""

from __future__ import annotations

import argparse
import sys

import comparison

from tinyexit.data import cifar_available
from tinyexit.experiment import EVAL_PROTOCOLS, HALF_STEP_LRS, INITS, RunConfig

#: the comparison's defaults; ``--quick`` replaces them with tiny ones (any flag given wins over both)
FULL = dict(
    archs=["msdnet3_small", "ranet4_small"],
    seeds=[0, 1, 2],
    epochs=300,
    n_train=None,
    batch_size=64,
    lr=0.1,
    val_size=5000,
    n_test=None,
    long_tail_arch="msdnet3_small",
    wpn_hidden=RunConfig.wpn_hidden,
)
QUICK = dict(
    archs=["msdnet4_tiny"],
    seeds=[0, 1],
    epochs=1,
    n_train=160,
    batch_size=16,
    lr=0.1,
    val_size=16,
    n_test=64,
    long_tail_arch="msdnet4_tiny",
    wpn_hidden=16,
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's arguments, with the defaults of the full or the quick comparison filled in."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (runs, metrics.json, summary.md, plots)")
    p.add_argument(
        "--archs",
        nargs="+",
        help=f"model presets, 'none' for the long-tailed setting alone (default {' '.join(FULL['archs'])})",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=comparison.METHODS,
        default=list(comparison.METHODS),
        help=f"methods compared (default {' '.join(comparison.METHODS)})",
    )
    p.add_argument("--seeds", nargs="+", type=int, help="seeds of every method (default 0 1 2)")
    p.add_argument("--epochs", type=int, help=f"training epochs of every run (default {FULL['epochs']})")
    p.add_argument(
        "--n-train",
        type=int,
        help="training images per run (default: all; the long-tailed setting "
        "takes them from its long-tailed subset)",
    )
    p.add_argument("--batch-size", type=int, help=f"default {FULL['batch_size']}")
    p.add_argument("--lr", type=float, help=f"initial learning rate, cosine schedule (default {FULL['lr']})")
    p.add_argument(
        "--val-size",
        type=int,
        help="held-out training images for the exit thresholds (default "
        f"{FULL['val_size']}, at most a tenth of the training set; holdout protocol only)",
    )
    p.add_argument("--n-test", type=int, help="test images (default: all 10,000)")
    p.add_argument(
        "--half-step-lr",
        choices=HALF_STEP_LRS,
        default=RunConfig.half_step_lr,
        help="L2W's half-steps take lr x half/batch ('scaled', the official code) or lr ('same')",
    )
    p.add_argument("--init", choices=INITS, default=RunConfig.init, help="model initialisation")
    p.add_argument(
        "--eval-protocol",
        choices=EVAL_PROTOCOLS,
        default=RunConfig.eval_protocol,
        help="exit thresholds from a held-out split, or from the augmented training set (official)",
    )
    p.add_argument(
        "--wpn-hidden", type=int, help=f"width of L2W's weight prediction net (default {FULL['wpn_hidden']})"
    )
    p.add_argument(
        "--long-tail-arch",
        help=f"architecture of the long-tailed setting, 'none' to skip it (default {FULL['long_tail_arch']})",
    )
    p.add_argument("--long-tail-factor", type=float, default=100.0, help="imbalance factor of that setting")
    p.add_argument(
        "--data",
        choices=("cifar10", "synthetic"),
        help="default cifar10; with --quick, cifar10 when "
        "a copy is under the data root, else synthetic images",
    )
    p.add_argument("--data-root", help="folder holding cifar-10-batches-py (default $TINYEXIT_DATA)")
    p.add_argument("--budgets", type=int, default=20, help="points of the common grid of expected Mul-Adds")
    p.add_argument("--quick", action="store_true", help="tiny settings, for a test of the whole pipeline")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.data is None:
        args.data = (
            "synthetic" if args.quick and not cifar_available("cifar10", args.data_root) else "cifar10"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    archs = [] if [a.lower() for a in args.archs] == ["none"] else args.archs
    settings = [comparison.Setting(arch, args.data) for arch in archs]
    if args.long_tail_arch.lower() != "none":
        settings.append(comparison.Setting(args.long_tail_arch, args.data, args.long_tail_factor))
    if not settings:
        print("error: --archs none and --long-tail-arch none leave nothing to compare", file=sys.stderr)
        return 2
    base = dict(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        val_size=args.val_size if args.eval_protocol == "holdout" else 0,
        half_step_lr=args.half_step_lr,
        init=args.init,
        eval_protocol=args.eval_protocol,
        train_subset=args.n_train,
        test_subset=args.n_test,
        wpn_hidden=args.wpn_hidden,
        data_root=args.data_root,
    )
    try:
        summary = comparison.reproduce(
            settings,
            args.seeds,
            base,
            args.out,
            methods=args.methods,
            num_budgets=args.budgets,
            options=vars(args),
            progress=sys.stderr.isatty(),
        )
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"\nwrote {args.out}/metrics.json, summary.md and plots/\n")
    print(comparison.markdown_report(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
