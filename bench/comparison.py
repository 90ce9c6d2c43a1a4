"""The pieces of ``bench/reproduce.py``: baseline against L2W (and its frozen-WPN control) over
architectures, seeds and settings.

- the runs of the comparison (:class:`Setting`, :func:`run_config`, :func:`run_dir`) and running or
  reusing each one through :mod:`tinyexit.experiment` (:func:`ensure_run`);
- aggregating several seeds' ``metrics.json`` (:func:`aggregate_runs`, :func:`summarize_setting`) with
  the statistics of :mod:`tinyexit.evaluate.compare`;
- the summary figures (:func:`plot_setting`), a markdown report (:func:`markdown_report`) and the
  whole comparison in one call (:func:`reproduce`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from tinyexit import experiment, plots
from tinyexit.evaluate import STD_DDOF, common_budgets, interpolate_curve, mean_std, paired_differences
from tinyexit.experiment import CHECKPOINT, RunConfig
from tinyexit.training import load_checkpoint

#: configuration fields that may differ between a saved run and the requested one (where the data lie).
_LOCATION_FIELDS = ("data_root",)
#: the compared methods, as the run-configuration fields that make each one. "frozen" is the fair
#: control of L2W: the same two SGD steps per batch with a WPN that is never trained.
#: "frozen_trained" is the paper's frozen ablation: the WPN of the finished L2W run of the same
#: setting and seed, frozen (its ``frozen_wpn`` is filled in by :func:`run_config`).
METHOD_CONFIGS = {
    "baseline": {"method": "baseline"},
    "l2w": {"method": "l2w"},
    "frozen": {"method": "l2w", "weighting": "frozen"},
    "frozen_trained": {"method": "l2w", "weighting": "frozen"},
}
METHODS = tuple(METHOD_CONFIGS)
_METHOD_NAMES = {
    "baseline": "baseline",
    "l2w": "L2W",
    "frozen": "frozen WPN",
    "frozen_trained": "frozen trained WPN",
}

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One architecture on one training set: the balanced one, or a long-tailed subset of it."""

    arch: str
    data: str = "cifar10"
    long_tail: float | None = None

    @property
    def label(self) -> str:
        """The training set, e.g. ``cifar10`` or ``cifar10-lt100``."""
        return f"{self.data}-lt{self.long_tail:g}" if self.long_tail else self.data

    @property
    def key(self) -> str:
        """The setting's name in the summary, e.g. ``cifar10/msdnet3_small``."""
        return f"{self.label}/{self.arch}"


def run_config(
    setting: Setting, method: str, seed: int, base: Mapping, out: str | Path | None = None
) -> RunConfig:
    """The configuration of one run: ``base`` (schedule, budget, sizes) for this setting, method and seed.

    ``out`` (the comparison's folder) is needed by "frozen_trained", whose WPN comes from the
    L2W run of the same setting and seed under it.

    Raises:
        ValueError: for a method not in :data:`METHOD_CONFIGS`, or "frozen_trained" without ``out``.
    """
    if method not in METHOD_CONFIGS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHOD_CONFIGS)}")
    source = {}
    if method == "frozen_trained":
        if out is None:
            raise ValueError("method 'frozen_trained' takes the WPN of an L2W run: give the comparison's out")
        source = {"frozen_wpn": str(run_dir(Path(out).resolve(), setting, "l2w", seed))}
    return RunConfig(
        **base,
        **METHOD_CONFIGS[method],
        **source,
        arch=setting.arch,
        data=setting.data,
        long_tail=setting.long_tail,
        seed=seed,
    ).validate()


def run_dir(out: str | Path, setting: Setting, method: str, seed: int) -> Path:
    """The folder of one run: ``out/runs/<training set>/<arch>/<method>/seed<seed>``."""
    return Path(out) / "runs" / setting.label / setting.arch / method / f"seed{seed}"


def config_differences(saved: Mapping, requested: Mapping) -> list[str]:
    """The fields where two configurations differ, as readable lines (``data_root`` is not compared)."""
    return [
        f"{k}={saved.get(k)!r} there, {requested.get(k)!r} requested"
        for k in sorted(set(saved) | set(requested))
        if k not in _LOCATION_FIELDS and saved.get(k) != requested.get(k)
    ]


def ensure_run(cfg: RunConfig, out: str | Path, progress: bool = False, log: Log = print) -> dict:
    """Train and evaluate the run ``cfg`` in ``out``, reusing whatever of it is already there.

    - ``out`` holds the same run, finished, with its ``metrics.json``: those metrics are returned;
      finished without them (or with stale ones): it is evaluated again from its checkpoint;
    - the same run, unfinished: it is resumed (``experiment.train(resume=True)``), then evaluated;
    - nothing: the run is trained from scratch and evaluated.

    Returns:
        The run's metrics (as ``experiment.evaluate`` returns and writes them).

    Raises:
        FileExistsError: ``out`` holds a run with another configuration, or a ``metrics.json``
            without a checkpoint; nothing there is overwritten.
    """
    out = Path(out)
    requested = dataclasses.asdict(cfg.validate())
    checkpoint, metrics_path = out / CHECKPOINT, out / "metrics.json"
    if not checkpoint.exists():
        if metrics_path.exists():
            raise FileExistsError(
                f"{out} holds a metrics.json but no {CHECKPOINT}; not overwriting it: "
                f"choose another --out or move it away"
            )
        return experiment.evaluate(experiment.train(cfg, out, progress=progress, log=log), out, log=log)
    state = load_checkpoint(checkpoint)
    differences = config_differences(state["config"], requested)
    if differences:
        raise FileExistsError(
            f"{out} holds another run ({'; '.join(differences)}); not overwriting it: "
            f"choose another --out or move it away"
        )
    if state["epoch"] < cfg.epochs:
        run = experiment.train(None, out, resume=True, progress=progress, log=log)
        return experiment.evaluate(run, out, log=log)
    metrics = _read_json(metrics_path)
    if (
        metrics
        and metrics.get("epochs_trained") == state["epoch"]
        and not config_differences(metrics["config"], requested)
    ):
        log(f"reusing the finished run in {out}")
        return metrics
    log(f"evaluating the finished run in {out}")
    return experiment.evaluate(experiment.load_run(checkpoint, cfg.data_root), out, log=log)


def _read_json(path: Path) -> dict | None:
    """The file's JSON object; None when it is missing or unreadable (e.g. cut short by an interruption)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def aggregate_runs(runs: Sequence[Mapping], budgets: Sequence[float]) -> dict:
    """Several seeds of one method in one setting, summarised.

    Args:
        runs: their ``metrics.json`` contents; configurations must agree except for the seed (and
            the L2W run each frozen trained WPN came from, which is that seed's).
        budgets: the expected Mul-Adds at which to compare the budgeted-batch curves.

    Returns:
        ``seeds``, ``n_seeds``, ``config`` (the common configuration, without ``seed``), ``images``
        (training, validation and test set sizes of the first run), ``anytime_accuracy`` (per exit),
        ``accuracy_at_budgets`` and ``seconds_per_epoch`` (each a :func:`mean_std`; a run's time per
        epoch is the mean over its epochs).

    Raises:
        ValueError: when the runs' configurations differ in more than the seed.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    configs = [{k: v for k, v in r["config"].items() if k not in ("seed", "frozen_wpn")} for r in runs]
    for run, config in zip(runs[1:], configs[1:]):
        differences = config_differences(config, configs[0])
        if differences:
            raise ValueError(
                f"seed {run['config']['seed']} was run with another configuration: {'; '.join(differences)}"
            )
    return {
        "seeds": [r["config"]["seed"] for r in runs],
        "n_seeds": len(runs),
        "config": configs[0],
        "images": runs[0].get("images"),
        "anytime_accuracy": mean_std([r["anytime_accuracy"] for r in runs]),
        "accuracy_at_budgets": mean_std([interpolate_curve(r["dynamic"], budgets) for r in runs]),
        "seconds_per_epoch": mean_std([np.mean([h["seconds"] for h in r["history"]]) for r in runs]),
    }


def summarize_setting(setting: Setting, runs: Mapping[str, Sequence[Mapping]], num_budgets: int = 20) -> dict:
    """Every method's seeds in one setting, compared at the same expected Mul-Adds.

    Args:
        setting: the architecture and training set.
        runs: method -> its runs' metrics.
        num_budgets: size of the common grid of budgets (over the range every curve covers).

    Returns:
        ``arch``, ``data``, ``long_tail``, ``mul_adds`` (per exit), ``budgets`` and, under ``methods``,
        :func:`aggregate_runs` of each method.
    """
    all_runs = [r for method_runs in runs.values() for r in method_runs]
    if any(r["mul_adds"] != all_runs[0]["mul_adds"] for r in all_runs):
        raise ValueError(f"{setting.key}: the runs' Mul-Adds per exit differ; they are not the same network")
    budgets = common_budgets([r["dynamic"] for r in all_runs], num_budgets)
    return {
        "arch": setting.arch,
        "data": setting.data,
        "long_tail": setting.long_tail,
        "mul_adds": all_runs[0]["mul_adds"],
        "budgets": budgets.tolist(),
        "methods": {method: aggregate_runs(method_runs, budgets) for method, method_runs in runs.items()},
    }


def plot_setting(entry: Mapping, prefix: str | Path, weight_files: Sequence[str | Path] = ()) -> list[Path]:
    """The figures of one setting: mean dynamic curves, per-exit accuracy bars, weight against loss.

    Args:
        entry: a :func:`summarize_setting` result.
        prefix: path prefix of the PNG files (``<prefix>_dynamic.png`` and so on).
        weight_files: L2W runs' ``weights_last_batch.npz``; their batches are drawn together.

    Returns:
        The files written.
    """
    prefix = Path(prefix)
    title = f"{entry['arch']} on {Setting(entry['arch'], entry['data'], entry['long_tail']).label}"
    methods = {_METHOD_NAMES.get(m, m): agg for m, agg in entry["methods"].items()}
    paths = [
        prefix.with_name(prefix.name + s)
        for s in ("_dynamic.png", "_exit_accuracy.png", "_weight_vs_loss.png")
    ]
    acc = {m: agg["anytime_accuracy"] for m, agg in methods.items()}
    figures = [
        plots.plot_mean_dynamic(
            entry["budgets"],
            {
                m: (a["accuracy_at_budgets"]["mean"], a["accuracy_at_budgets"]["std"])
                for m, a in methods.items()
            },
            paths[0],
            title=f"{title}: budgeted batch",
            anytime={m: (entry["mul_adds"], a["mean"], a["std"]) for m, a in acc.items()},
        ),
        plots.plot_exit_accuracy(
            {m: a["mean"] for m, a in acc.items()},
            paths[1],
            title=f"{title}: accuracy of each exit",
            errors={m: a["std"] for m, a in acc.items()},
        ),
    ]
    if weight_files:
        batches = [np.load(f) for f in weight_files]
        figures.append(
            plots.plot_weight_vs_loss(
                np.concatenate([b["losses"] for b in batches]),
                np.concatenate([b["weights"] for b in batches]),
                paths[2],
                title=f"{title}: L2W weight against loss, last batch of each seed",
            )
        )
    plots.close(*figures)
    return paths[: len(figures)]


def _pm(stats: Mapping, i: int | None = None, digits: int = 2) -> str:
    mean, std = (stats["mean"], stats["std"]) if i is None else (stats["mean"][i], stats["std"][i])
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def markdown_report(summary: Mapping, rows: int = 5) -> str:
    """Markdown tables of a :func:`reproduce` summary, ready for ``docs/results.md``.

    Per setting: the accuracy of every exit (mean ± std over seeds) and the time per epoch, the
    budgeted-batch accuracy at ``rows`` of the common budgets, and L2W's gains seed by seed.
    """
    lines = []
    for key, entry in summary["settings"].items():
        methods = entry["methods"]
        first = next(iter(methods.values()))
        cfg, k = first["config"], len(entry["mul_adds"])
        sizes = first.get("images") or {}
        lines += [
            f"### {key}",
            "",
            f"{_count(first['n_seeds'], 'seed')} ({', '.join(map(str, first['seeds']))}), "
            f"{_count(cfg['epochs'], 'epoch')}, "
            f"{sizes.get('train', '?')} training / {sizes.get('val', '?')} validation / "
            f"{sizes.get('test', '?')} test images, batch {cfg['batch_size']}, lr {cfg['lr']}; "
            f"mean ± std over seeds.",
            "",
            "| | " + " | ".join(f"exit {i + 1}" for i in range(k)) + " | s/epoch |",
            "|---" * (k + 2) + "|",
            "| Mul-Adds (M) | " + " | ".join(f"{m / 1e6:.2f}" for m in entry["mul_adds"]) + " | |",
        ]
        for method, agg in methods.items():
            lines.append(
                f"| {_METHOD_NAMES.get(method, method)} top-1 (%) | "
                + " | ".join(_pm(agg["anytime_accuracy"], i) for i in range(k))
                + f" | {_pm(agg['seconds_per_epoch'], digits=1)} |"
            )
        budgets = entry["budgets"]
        picks = sorted({int(round(i)) for i in np.linspace(0, len(budgets) - 1, min(rows, len(budgets)))})
        names = [_METHOD_NAMES.get(m, m) for m in methods]
        pairs = (("l2w", "baseline"), ("l2w", "frozen"), ("l2w", "frozen_trained"))
        gains = [(a, b) for a, b in pairs if a in methods and b in methods]
        header = [f"{n} top-1 (%)" for n in names] + [
            f"{_METHOD_NAMES[a]} − {_METHOD_NAMES[b]}" for a, b in gains
        ]
        lines += [
            "",
            "| expected Mul-Adds (M) | " + " | ".join(header) + " |",
            "|---" * (len(header) + 1) + "|",
        ]
        for i in picks:
            cells = [_pm(agg["accuracy_at_budgets"], i) for agg in methods.values()]
            at = {m: agg["accuracy_at_budgets"]["mean"][i] for m, agg in methods.items()}
            cells += [f"{at[a] - at[b]:+.2f}" for a, b in gains]
            lines.append(f"| {budgets[i] / 1e6:.2f} | " + " | ".join(cells) + " |")
        lines.append("")
        for a, b in gains:
            if methods[a]["seeds"] == methods[b]["seeds"]:
                lines += [_paired_line(methods, a, b), ""]
    return "\n".join(lines)


def _paired_line(methods: Mapping, a: str, b: str) -> str:
    """Method a − method b seed by seed, each averaged over the common budgets."""
    diff = paired_differences(
        methods[a]["accuracy_at_budgets"]["per_run"], methods[b]["accuracy_at_budgets"]["per_run"]
    )
    pairs = ", ".join(f"{d:+.2f} (seed {s})" for d, s in zip(diff, methods[a]["seeds"]))
    return (
        f"{_METHOD_NAMES[a]} − {_METHOD_NAMES[b]} seed by seed, mean over the budgets: {pairs}; "
        f"mean {diff.mean():+.2f}."
    )


def reproduce(
    settings: Sequence[Setting],
    seeds: Sequence[int],
    base: Mapping,
    out: str | Path,
    methods: Sequence[str] = METHODS,
    num_budgets: int = 20,
    options: Mapping | None = None,
    progress: bool = False,
    log: Log = print,
) -> dict:
    """Run (or reuse) every setting x method x seed, then write the summary, its figures and report.

    Args:
        settings: the architectures and training sets.
        seeds: the seeds of every method in every setting.
        base: the ``RunConfig`` fields common to all runs (schedule, batch, sizes...).
        out: the output folder: ``runs/`` (one folder per run), ``metrics.json`` (the summary),
            ``summary.md`` (:func:`markdown_report`) and ``plots/``.
        methods: the methods compared.
        num_budgets: size of each setting's common grid of budgets.
        options: recorded in the summary as given (e.g. the command's arguments).
        progress: show each epoch's progress line.
        log: where progress messages go.

    Returns:
        The summary written to ``out/metrics.json``: ``options``, ``std`` (how spreads are computed)
        and, under ``settings`` (by :attr:`Setting.key`), :func:`summarize_setting` plus ``runs`` and
        ``plots`` (paths relative to ``out``).

    Raises:
        ValueError: for an invalid configuration, before any run starts.
        FileExistsError: as :func:`ensure_run`.
    """
    out = Path(out)
    if "frozen_trained" in methods and "l2w" not in methods:
        raise ValueError("method 'frozen_trained' freezes the WPN of the L2W runs: compare 'l2w' too")
    methods = sorted(methods, key=METHODS.index)  # each L2W run finishes before its WPN is frozen
    plan = {
        (s, m, seed): run_config(s, m, seed, base, out) for s in settings for m in methods for seed in seeds
    }
    summary = {
        "options": dict(options or {}),
        "std": f"population standard deviation over seeds (ddof={STD_DDOF})",
        "settings": {},
    }
    done = 0
    for setting in settings:
        runs: dict[str, list[dict]] = {}
        for method in methods:
            for seed in seeds:
                done += 1
                folder = run_dir(out, setting, method, seed)
                log(f"[{done}/{len(plan)}] {setting.key} {method} seed {seed}: {folder}")
                metrics = ensure_run(
                    plan[setting, method, seed],
                    folder,
                    progress=progress,
                    log=lambda line: log("    " + line),
                )
                runs.setdefault(method, []).append(metrics)
        entry = summarize_setting(setting, runs, num_budgets)
        entry["runs"] = {
            m: [str(run_dir(out, setting, m, s).relative_to(out)) for s in seeds] for m in methods
        }
        weights = [
            f for s in seeds if (f := run_dir(out, setting, "l2w", s) / "weights_last_batch.npz").exists()
        ]
        entry["plots"] = [
            str(p.relative_to(out))
            for p in plot_setting(entry, out / "plots" / f"{setting.label}_{setting.arch}", weights)
        ]
        summary["settings"][setting.key] = entry
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(markdown_report(summary))
    return summary
