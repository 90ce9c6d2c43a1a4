"""A training run from one configuration: data, model, trainer, checkpoints, evaluation, metrics.json.

Used by ``python -m tinyexit train/eval``, the demo and ``bench/reproduce.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from . import l2w, models, optim, plots
from .autograd.creation import default_generator, manual_seed
from .backend import check_device
from .data import (
    BatchIterator,
    compute_mean_std,
    load_cifar,
    long_tailed_indices,
    synthetic_dataset,
    train_val_split,
)
from .data.transforms import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from .evaluate import anytime_accuracy, dynamic_evaluate, predict_probs
from .training import (
    BaselineTrainer,
    DivergenceError,
    first_non_finite,
    load_checkpoint,
    module_state,
    save_checkpoint,
    train_epoch,
)
from .training.checkpoint import atomic_savez, atomic_write, remove_stale_temporaries, restore_rng, rng_state
from .training.run_lock import RunLock

DATASETS = ("cifar10", "cifar100", "synthetic")
METHODS = ("baseline", "l2w")
CHECKPOINT = "checkpoint.npz"
WEIGHTS_LAST_BATCH = "weights_last_batch.npz"
RESULTS = ("metrics.json", "dynamic.png", "exit_accuracy.png", "weight_vs_loss.png", WEIGHTS_LAST_BATCH)
RESUMABLE_CHANGES = ("data_root", "device")  # where the data lives and runs does not change the run


@dataclasses.dataclass
class RunConfig:
    """Everything that defines a run; saved in its checkpoint and metrics."""

    arch: str = "msdnet4_tiny"
    data: str = "cifar10"
    data_root: str | None = None
    long_tail: float | None = None
    method: str = "baseline"
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    q: float = 0.75
    delta: float = 0.8
    meta_lr: float = 1e-4
    meta_weight_decay: float = 1e-4
    meta_interval: int = 1
    wpn_hidden: int = 500
    wpn_input: str = "loss"
    weighting: str = "wpn"
    meta_objective: str = "allocated"
    val_size: int = 5000
    train_subset: int | None = None
    test_subset: int | None = None
    augment: bool = True
    synthetic_noise: float = 0.3
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> RunConfig:
        """Check every field and return self; raises ValueError naming the bad field.

        ``device="cuda"`` raises RuntimeError where CuPy or a GPU is missing.
        """
        if self.data not in DATASETS:
            raise ValueError(f"unknown dataset {self.data!r}: expected one of {DATASETS}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: expected one of {METHODS}")
        if self.arch not in models.PRESETS:
            raise ValueError(f"unknown architecture {self.arch!r}: expected one of {sorted(models.PRESETS)}")
        for name, allowed in (
            ("weighting", l2w.WEIGHTINGS),
            ("meta_objective", l2w.META_OBJECTIVES),
            ("wpn_input", l2w.WPN_INPUTS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}: expected one of {allowed}")
        for name in ("epochs", "batch_size", "meta_interval", "wpn_hidden", "train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None or name not in ("train_subset", "test_subset"):
                _check_int(name, value, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        _check_int("val_size", self.val_size, minimum=0)
        for name in ("lr", "q", "meta_lr"):
            _check_number(name, getattr(self, name), positive=True)
        for name in ("momentum", "weight_decay", "delta", "meta_weight_decay", "synthetic_noise"):
            _check_number(name, getattr(self, name), positive=False)
        if self.long_tail is not None:
            _check_number("long_tail", self.long_tail, positive=True)
            if self.long_tail < 1:
                raise ValueError(
                    f"long_tail is the imbalance factor (largest class / smallest class) and must be "
                    f"at least 1, got {self.long_tail}; leave it unset for the balanced data"
                )
        if self.method == "l2w" and self.batch_size < 4:
            raise ValueError("L2W splits each batch in two halves: use a batch size of at least 4")
        # Evaluation needs held-out images to choose the exit thresholds from.
        if self.val_size == 0:
            raise ValueError(
                "val_size=0 leaves no held-out images to choose the early-exit thresholds from; "
                "use a positive val_size"
            )
        self.device = check_device(self.device)
        return self


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _check_number(name: str, value, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(
            f"{name} must be {'positive' if positive else 'non-negative'} and finite, got {value}"
        )


def load_data(cfg: RunConfig) -> dict:
    """Train/validation/test arrays (uint8 images, int64 labels), class count and normalisation."""
    if cfg.data == "synthetic":
        n = cfg.train_subset or 4000
        train = synthetic_dataset(n + cfg.val_size, seed=cfg.seed, noise=cfg.synthetic_noise)
        test = synthetic_dataset(cfg.test_subset or 1000, seed=cfg.seed + 1, noise=cfg.synthetic_noise)
        num_classes = 10
        stats = compute_mean_std(train[0])
    else:
        train, test = (  # the loaders resolve the root, so their messages say where it came from
            load_cifar(cfg.data, root=cfg.data_root, train=True),
            load_cifar(cfg.data, root=cfg.data_root, train=False),
        )
        num_classes = 10 if cfg.data == "cifar10" else 100
        stats = (CIFAR10_MEAN, CIFAR10_STD) if cfg.data == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
    images, labels = train
    if cfg.long_tail is not None:
        keep = long_tailed_indices(labels, cfg.long_tail, seed=cfg.seed, num_classes=num_classes)
        images, labels = images[keep], labels[keep]
    if cfg.val_size >= len(labels):
        raise ValueError(f"val_size {cfg.val_size} leaves no training images: {cfg.data} has {len(labels)}")
    # on CIFAR at most a tenth of the training images are held out (recorded in metrics.json)
    val_size = min(cfg.val_size, len(labels) // 10) if cfg.data != "synthetic" else cfg.val_size
    train_idx, val_idx = train_val_split(len(labels), val_size, seed=cfg.seed)
    if cfg.train_subset is not None and cfg.data != "synthetic":  # synthetic data is made at that size
        if cfg.train_subset > len(train_idx):
            raise ValueError(
                f"train_subset {cfg.train_subset} is more than the {len(train_idx)} training images "
                f"left after holding out {val_size} for validation"
            )
        train_idx = train_idx[np.random.default_rng(cfg.seed).permutation(len(train_idx))[: cfg.train_subset]]
        train_idx.sort()
    if cfg.method == "l2w" and len(train_idx) < cfg.batch_size:
        raise ValueError(
            f"L2W trains on full batches only: {len(train_idx)} training images make no batch of "
            f"batch_size {cfg.batch_size}"
        )
    test_images, test_labels = test
    if cfg.test_subset is not None:
        if cfg.test_subset > len(test_labels):
            raise ValueError(f"test_subset {cfg.test_subset} is more than the {len(test_labels)} test images")
        test_images, test_labels = test_images[: cfg.test_subset], test_labels[: cfg.test_subset]
    return {
        "train": (images[train_idx], labels[train_idx]),
        "val": (images[val_idx], labels[val_idx]),
        "test": (test_images, test_labels),
        "num_classes": num_classes,
        "normalization": stats,
    }


class Run:
    """The model, optimisers, schedule, trainer and loader of one run, restorable from a checkpoint."""

    def __init__(self, cfg: RunConfig, data: dict):
        self.cfg, self.data = cfg.validate(), data
        manual_seed(cfg.seed)
        self.model = models.create(cfg.arch, num_classes=data["num_classes"]).to(cfg.device)
        self.optimizer = optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        images, labels = data["train"]
        self.loader = BatchIterator(
            images,
            labels,
            cfg.batch_size,
            shuffle=True,
            augment=cfg.augment,
            normalize=data["normalization"],
            drop_last=cfg.method == "l2w",
            seed=cfg.seed,
        )
        scheduled = [self.optimizer]
        self.wpn = self.wpn_optimizer = None
        if cfg.method == "l2w":
            self.wpn = l2w.WeightPredictionNet(
                self.model.num_exits, hidden=cfg.wpn_hidden, delta=cfg.delta, input=cfg.wpn_input
            ).to(cfg.device)
            self.wpn_optimizer = optim.Adam(
                self.wpn.parameters(), lr=cfg.meta_lr, weight_decay=cfg.meta_weight_decay
            )
            scheduled.append(self.wpn_optimizer)  # the official code anneals the WPN's lr too
            self.trainer = l2w.L2WTrainer(
                self.model,
                self.wpn,
                self.optimizer,
                self.wpn_optimizer,
                q=cfg.q,
                meta_interval=cfg.meta_interval,
                weighting=cfg.weighting,
                meta_objective=cfg.meta_objective,
            )
        else:
            self.trainer = BaselineTrainer(self.model, self.optimizer)
        self.schedule = optim.CosineAnnealingLR(scheduled, T_max=cfg.epochs * len(self.loader))
        self.epoch, self.history = 0, []
        self.extensions: list[dict] = []  # each resume that added epochs (see ``train``)
        self.checkpoint: Path | None = None  # the file this run is saved in, once it is

    def state(self) -> dict:
        """Everything a checkpoint holds: config, epoch, history, model, optimisers, schedule, loader, RNG, WPN."""
        return {
            "config": dataclasses.asdict(self.cfg),
            "epoch": self.epoch,
            "history": self.history,
            "extensions": self.extensions,
            "model": module_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": rng_state(default_generator()),
            "wpn": module_state(self.wpn) if self.wpn is not None else None,
            "wpn_optimizer": self.wpn_optimizer.state_dict() if self.wpn_optimizer is not None else None,
        }

    def restore(self, state: dict) -> None:
        """Load a state written by ``state`` into this run."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.loader.load_state_dict(state["loader"])
        restore_rng(default_generator(), state["rng"])
        if self.wpn is not None:
            self.wpn.load_state_dict(state["wpn"])
            self.wpn_optimizer.load_state_dict(state["wpn_optimizer"])
        self.epoch, self.history = state["epoch"], list(state["history"])
        self.extensions = list(state["extensions"])


def train(
    cfg: RunConfig | None,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    max_steps: int | None = None,
    stop_after: int | None = None,
    log=print,
    device: str | None = None,
) -> Run:
    """Train (or resume) a run in ``out``; a checkpoint is written atomically after every epoch.

    The folder is locked while training (see ``training.run_lock``). A checkpoint is written only
    when every weight is finite: a diverging run stops and keeps its last good checkpoint.

    Args:
        cfg: the run's configuration; with ``resume`` it may be None (the saved one is used), or
            the saved one with a moved ``data_root``.
        out: the run folder.
        resume: continue the run saved in ``out`` with its saved configuration.
        progress: show a progress line.
        max_steps: at most this many batches per epoch (for quick checks).
        stop_after: stop after this many epochs in total (the run can be resumed later).
        device: train on this device (``"cpu"``, ``"cuda"``) instead of the configured one, e.g.
            to resume on a GPU a run started on a CPU.

    Raises:
        FileExistsError: ``out`` already holds a checkpoint and ``resume`` is False, or it holds
            results (metrics.json, plots) of a run whose checkpoint is gone.
        ValueError: when resuming with settings that differ from the saved ones (they would
            make it another run), or with fewer epochs. More epochs extend the run: its cosine
            schedule is stretched to the new end from the current step (recorded in ``extensions``).
        DivergenceError: a loss or weight became NaN or infinite; the message names the epoch
            and step.
        RunFolderInUseError: another process is writing ``out``.
        OSError: ``out`` cannot be written (checked before anything is trained).
    """
    out = Path(out)
    path = out / CHECKPOINT
    if path.exists() and not resume:
        raise FileExistsError(
            f"{out} already holds a run ({path}); pass resume=True to continue it, or choose another folder"
        )
    if resume and not path.exists():
        raise FileNotFoundError(f"resume=True, but there is no checkpoint at {path}")
    if not resume:
        _refuse_foreign_results(out, checkpoint=None)
    state = load_checkpoint(path) if resume else None
    if state is not None:
        saved_epochs = state["config"]["epochs"]
        cfg = resumed_config(RunConfig(**state["config"]), cfg, out)
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    cfg.validate()
    with RunLock(out):
        remove_stale_temporaries(out, (CHECKPOINT, WEIGHTS_LAST_BATCH, "metrics.json"))
        run = Run(cfg, load_data(cfg))
        run.checkpoint = path.resolve()
        if state is not None:
            run.restore(state)
            log(f"resumed {path} at epoch {run.epoch}")
            if cfg.epochs != saved_epochs:
                _extend(run, saved_epochs, log)
        last_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
        while run.epoch < last_epoch:
            stats = _train_one_epoch(run, path, progress, max_steps)
            run.epoch += 1
            run.history.append({k: v for k, v in stats.items() if k != "last"} | {"epoch": run.epoch})
            if cfg.method == "l2w":  # the last batch's losses and weights, for the weight-vs-loss plot
                last = stats["last"]
                atomic_savez(out / WEIGHTS_LAST_BATCH, losses=last["losses"], weights=last["weights"])
            save_checkpoint(path, run.state())
            log(
                f"epoch {run.epoch}: loss {stats['loss']:.3f}, train acc (last exit) {stats['accuracy']:.1f}%, "
                f"{stats['images_per_s']:.0f} img/s, {stats['seconds']:.0f} s"
            )
    return run


def _train_one_epoch(run: Run, path: Path, progress: bool, max_steps: int | None) -> dict:
    """One epoch of ``run``; a non-finite loss or weight raises DivergenceError naming epoch and step."""
    epoch, cfg = run.epoch + 1, run.cfg
    try:
        stats = train_epoch(
            run.trainer,
            run.loader,
            run.schedule,
            label=f"epoch {epoch}/{cfg.epochs}",
            progress=progress,
            max_steps=max_steps,
        )
        bad = first_non_finite(run.model) or (first_non_finite(run.wpn) if run.wpn is not None else None)
        if bad is None:
            return stats
        problem, step = f"epoch {epoch}, its last step: weight {bad} is not finite", None
    except DivergenceError as e:
        problem, step = f"epoch {epoch}, {e}", e.step
    kept = (
        f"the last good checkpoint (epoch {run.epoch}) is kept in {path}"
        if path.exists()
        else "no checkpoint was written"
    )
    raise DivergenceError(
        f"training diverged at {problem}. The learning rate (lr={cfg.lr}"
        + (f", meta_lr={cfg.meta_lr}" if cfg.method == "l2w" else "")
        + f") is probably too high: use a smaller one. {kept[0].upper()}{kept[1:]}.",
        step,
    ) from None


def _extend(run: Run, saved_epochs: int, log) -> None:
    """Stretch the cosine schedule of a resumed run over its new epoch count, from the current step.

    The learning rate rises from where the shorter schedule had brought it to the longer one's value
    at this step; the run is then not the one a longer run from the start would have been, and
    ``extensions`` in its checkpoint and metrics.json says so.
    """
    run.schedule.load_state_dict(run.schedule.state_dict() | {"T_max": run.cfg.epochs * len(run.loader)})
    run.extensions.append({"at_epoch": run.epoch, "from_epochs": saved_epochs, "to_epochs": run.cfg.epochs})
    log(
        f"extended the run from {saved_epochs} to {run.cfg.epochs} epochs: its cosine schedule now ends "
        f"at epoch {run.cfg.epochs} (the lr rises to {run.schedule.get_last_lr()[0]:.4g})"
    )


def resumed_config(
    saved: RunConfig, given: RunConfig | None, out: str | Path = "the run folder"
) -> RunConfig:
    """The configuration a resumed run continues with: the saved one, relocated or extended.

    Only ``data_root`` may move, and ``epochs`` may grow (the run is extended: see ``train``).

    Raises:
        ValueError: ``given`` differs from ``saved`` in a setting that would make it another run
            (fewer epochs included); the message names every such setting with both values.
    """
    if given is None:
        return saved
    if given.epochs < saved.epochs:
        raise ValueError(
            f"the run in {out} was configured for {saved.epochs} epochs; resuming continues it "
            f"to that or extends it (fewer epochs would cut its learning-rate schedule short)"
        )
    changed = [
        f"{f.name} (saved {getattr(saved, f.name)!r}, given {getattr(given, f.name)!r})"
        for f in dataclasses.fields(RunConfig)
        if f.name not in (*RESUMABLE_CHANGES, "epochs") and getattr(given, f.name) != getattr(saved, f.name)
    ]
    if changed:
        raise ValueError(
            f"resuming continues the run saved in {out} unchanged, but these settings differ from it: "
            + ", ".join(changed)
        )
    return dataclasses.replace(saved, data_root=given.data_root or saved.data_root, epochs=given.epochs)


def _refuse_foreign_results(out: Path, checkpoint: Path | None) -> None:
    """Refuse to write into ``out`` when it holds results that are not those of ``checkpoint``."""
    existing = out / CHECKPOINT
    if existing.exists() and (checkpoint is None or existing.resolve() != checkpoint):
        raise FileExistsError(
            f"{out} holds another run ({existing}); not writing the results of "
            f"{checkpoint or 'an unsaved run'} over it: choose another folder"
        )
    if existing.exists():
        return  # the folder of the run being evaluated: its own results are renewed
    found = [name for name in RESULTS if (out / name).exists()]
    metrics = out / "metrics.json"
    if checkpoint is not None and metrics.exists():
        try:
            if json.loads(metrics.read_text()).get("checkpoint") == str(checkpoint):
                return  # results of this same checkpoint, evaluated here before
        except (OSError, ValueError, AttributeError):
            pass
    if found:
        raise FileExistsError(
            f"{out} already holds results ({', '.join(found)}) of another run; not overwriting "
            "them: choose another folder, or move them away first"
        )


def evaluate(run: Run, out: str | Path | None = None, log=print) -> dict:
    """Anytime accuracies, the budgeted-batch curve (thresholds from the validation split), Mul-Adds.

    Writes ``metrics.json`` and the plots into ``out`` when given. ``images`` in the metrics counts
    the training, validation and test images actually used (at most a tenth of CIFAR's training
    images are held out, whatever ``val_size`` asks).

    Raises:
        FileExistsError: ``out`` holds another run's checkpoint or results (they are never
            overwritten).
        RunFolderInUseError: another process is writing ``out``.
    """
    if out is not None:
        out = Path(out)
        _refuse_foreign_results(out, run.checkpoint)
        with RunLock(out):
            return _evaluate(run, out, log)
    return _evaluate(run, None, log)


def _evaluate(run: Run, out: Path | None, log) -> dict:
    data, cfg = run.data, run.cfg
    counts = models.count_ops(run.model)
    start = time.perf_counter()
    val_probs = predict_probs(run.model, data["val"][0], normalization=data["normalization"])
    test_probs = predict_probs(run.model, data["test"][0], normalization=data["normalization"])
    seconds = time.perf_counter() - start
    anytime = anytime_accuracy(test_probs, data["test"][1])
    curve = dynamic_evaluate(val_probs, data["val"][1], test_probs, data["test"][1], counts.mul_adds)
    metrics = {
        "config": dataclasses.asdict(cfg),
        "checkpoint": None if run.checkpoint is None else str(run.checkpoint),
        "epochs_trained": run.epoch,
        "history": run.history,
        "extensions": run.extensions,
        "anytime_accuracy": anytime,
        "mul_adds": list(counts.mul_adds),
        "params": list(counts.params),
        "dynamic": [{**p, "thresholds": [_finite(t) for t in p["thresholds"]]} for p in curve],
        "thresholds_from": f"held-out validation split of the training data ({len(data['val'][1])} images)",
        "images": {split: len(data[split][1]) for split in ("train", "val", "test")},
        "eval_seconds": seconds,
    }
    log("anytime accuracy per exit: " + ", ".join(f"{a:.1f}%" for a in anytime))
    if out is not None:
        atomic_write(out / "metrics.json", lambda f: f.write(json.dumps(metrics, indent=1).encode()))
        figures = [
            plots.plot_dynamic(
                {cfg.method: curve}, out / "dynamic.png", anytime={cfg.method: (counts.mul_adds, anytime)}
            ),
            plots.plot_exit_accuracy({cfg.method: anytime}, out / "exit_accuracy.png"),
        ]
        if (out / WEIGHTS_LAST_BATCH).exists():
            with np.load(out / WEIGHTS_LAST_BATCH, allow_pickle=False) as z:
                figures.append(
                    plots.plot_weight_vs_loss(z["losses"], z["weights"], out / "weight_vs_loss.png")
                )
        plots.close(*figures)  # saved: do not keep them open across many runs
        log(f"wrote {out / 'metrics.json'} and plots")
    return metrics


def _finite(t: float) -> float | str:
    """JSON has no infinities: write them as strings."""
    return t if math.isfinite(t) else ("inf" if t > 0 else "-inf")


def load_run(checkpoint: str | Path, data_root_override: str | None = None, device: str | None = None) -> Run:
    """Rebuild a run from its checkpoint (with its data split) for evaluation, on ``device`` if given."""
    state = load_checkpoint(checkpoint)
    cfg = RunConfig(**state["config"])
    if data_root_override:
        cfg = dataclasses.replace(cfg, data_root=data_root_override)
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    run = Run(cfg, load_data(cfg))
    run.restore(state)
    run.checkpoint = Path(checkpoint).resolve()
    return run
