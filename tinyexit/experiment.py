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
#: how L2W's half-steps take ``lr``: "scaled" = lr x half/batch (the official code: the same
#: lr per sample as the baseline's step on the whole batch), "same" = lr on every half-step
HALF_STEP_LRS = ("scaled", "same")
INITS = models.INITS
#: where the exit thresholds come from: "holdout" = a held-out split of the training images,
#: "official" = every training image is trained on and the thresholds come from the augmented
#: training loader, as the official code
EVAL_PROTOCOLS = ("holdout", "official")
CHECKPOINT = "checkpoint.npz"
WEIGHTS_LAST_BATCH = "weights_last_batch.npz"
RESULTS = ("metrics.json", "dynamic.png", "exit_accuracy.png", "weight_vs_loss.png", WEIGHTS_LAST_BATCH)
RESUMABLE_CHANGES = ("data_root", "device")  # where the data lives and runs does not change the run


@dataclasses.dataclass
class RunConfig:
    """Everything that defines a run; saved in its checkpoint and metrics.

    The recipe fields (defaults: the official code's, except the held-out thresholds):

    Attributes:
        lr: initial learning rate of an SGD step on a whole loaded batch (cosine schedule).
        half_step_lr: "scaled": L2W's half-steps take lr x half/batch, as the official code;
            "same": they take ``lr`` (see ``step_lr``).
        init: the models' initialisation, "official" (what the paper's runs trained from) or "he".
        eval_protocol: "holdout": exit thresholds from ``val_size`` held-out training images;
            "official": every training image is trained on, thresholds from the augmented
            training set (``val_size`` is then not used).
        frozen_wpn: with ``weighting="frozen"``, the folder (or checkpoint) of a finished L2W run
            whose WPN is frozen (the paper's ablation); None freezes the initial WPN.
    """

    arch: str = "msdnet4_tiny"
    data: str = "cifar10"
    data_root: str | None = None
    long_tail: float | None = None
    method: str = "baseline"
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.1
    half_step_lr: str = "scaled"
    init: str = "official"
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
    eval_protocol: str = "holdout"
    val_size: int = 5000
    frozen_wpn: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    augment: bool = True
    synthetic_noise: float = 0.1
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
        if self.arch not in models.list_presets("cifar"):
            raise ValueError(
                f"architecture {self.arch!r} is built for 224x224 ImageNet images, and runs train on "
                f"32x32 images: expected one of {sorted(models.list_presets('cifar'))}"
            )
        for name, allowed in (
            ("weighting", l2w.WEIGHTINGS),
            ("meta_objective", l2w.META_OBJECTIVES),
            ("wpn_input", l2w.WPN_INPUTS),
            ("half_step_lr", HALF_STEP_LRS),
            ("init", INITS),
            ("eval_protocol", EVAL_PROTOCOLS),
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
        if self.eval_protocol == "holdout" and self.val_size < 1:
            raise ValueError(
                "eval_protocol='holdout' takes the exit thresholds from val_size held-out images: "
                "give val_size >= 1, or use eval_protocol='official' (thresholds from the training set)"
            )
        if self.frozen_wpn is not None and (self.method != "l2w" or self.weighting != "frozen"):
            raise ValueError(
                "frozen_wpn (a WPN from a finished L2W run) needs method='l2w' and weighting='frozen'"
            )
        self.device = check_device(self.device)
        return self

    @property
    def step_lr(self) -> float:
        """The initial lr of each backbone SGD step (the schedule anneals it).

        ``lr`` is the rate of a step on a whole loaded batch, as the baseline takes it. L2W (and every
        ablation sharing its two half-steps) steps on halves: with ``half_step_lr="scaled"`` each
        half-step takes lr x half/batch, the linear rule of the official code (halves of 512 at 0.8
        where the baseline takes 64 at 0.1); with ``"same"`` it takes ``lr``.
        """
        if self.method == "l2w" and self.half_step_lr == "scaled":
            return self.lr * (self.batch_size // 2) / self.batch_size
        return self.lr


#: the recipe of checkpoints written before these fields existed: what those runs trained with
_RECIPE_BEFORE_OPTIONS = {"half_step_lr": "same", "init": "he"}


def saved_config(state: dict) -> RunConfig:
    """The configuration stored in a checkpoint; fields it predates get the values that run used."""
    return RunConfig(**{**_RECIPE_BEFORE_OPTIONS, **state["config"]})


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
    held_out = cfg.val_size if cfg.eval_protocol == "holdout" else 0
    if cfg.data == "synthetic":
        n = cfg.train_subset or 4000
        train = synthetic_dataset(n + held_out, seed=cfg.seed, noise=cfg.synthetic_noise)
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
    if held_out >= len(labels):
        raise ValueError(f"val_size {held_out} leaves no training images: {cfg.data} has {len(labels)}")
    # on CIFAR at most a tenth of the training images are held out (recorded in metrics.json)
    val_size = min(held_out, len(labels) // 10) if cfg.data != "synthetic" else held_out
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
        self.model = models.create(cfg.arch, num_classes=data["num_classes"], init=cfg.init).to(cfg.device)
        self.optimizer = optim.SGD(
            self.model.parameters(), lr=cfg.step_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
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
        cfg = resumed_config(saved_config(state), cfg, out)
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
        elif cfg.frozen_wpn is not None:
            load_trained_wpn(run, cfg.frozen_wpn)
            log(f"frozen WPN taken from {cfg.frozen_wpn}")
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
    val_probs, val_labels, thresholds_from = threshold_set(run)
    test_probs = predict_probs(run.model, data["test"][0], normalization=data["normalization"])
    seconds = time.perf_counter() - start
    anytime = anytime_accuracy(test_probs, data["test"][1])
    curve = dynamic_evaluate(val_probs, val_labels, test_probs, data["test"][1], counts.mul_adds)
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
        "eval_protocol": cfg.eval_protocol,
        "thresholds_from": thresholds_from,
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


def load_trained_wpn(run: Run, source: str | Path) -> None:
    """Load into ``run.wpn`` the WPN of a finished L2W run (the paper's frozen-WPN ablation).

    Args:
        run: a run with a WPN (``method="l2w"``).
        source: that L2W run's folder, or its checkpoint file.

    Raises:
        ValueError: when the source is not a finished L2W run with a learned WPN of the same shape.
    """
    path = Path(source)
    path = path / CHECKPOINT if path.is_dir() else path
    state = load_checkpoint(path)
    saved = state["config"]
    if saved.get("method") != "l2w" or saved.get("weighting") != "wpn" or state.get("wpn") is None:
        raise ValueError(f"{path} is not an L2W run with a learned WPN (weighting='wpn')")
    if state["epoch"] < saved["epochs"]:
        raise ValueError(
            f"{path} is unfinished ({state['epoch']} of {saved['epochs']} epochs): the frozen ablation "
            f"takes the WPN of a finished run"
        )
    ours = run.wpn.state_dict()
    theirs = state["wpn"]
    if set(ours) != set(theirs) or any(ours[k].shape != tuple(theirs[k].shape) for k in ours):
        raise ValueError(
            f"the WPN of {path} has another shape (exits, wpn_hidden or wpn_input differ) than this run's"
        )
    if any(saved.get(k) != getattr(run.cfg, k) for k in ("delta", "wpn_input")):
        raise ValueError(f"the WPN of {path} was trained with another delta or wpn_input than this run's")
    run.wpn.load_state_dict(theirs)


def threshold_set(run: Run) -> tuple[np.ndarray, np.ndarray, str]:
    """The softmax outputs (K, N, classes) and labels the exit thresholds come from, and a description.

    ``eval_protocol="holdout"``: the held-out validation split. ``"official"``: the whole training
    set as the official code's training loader gives it (random crop and flip, one pass, the
    model in eval mode).
    """
    data, cfg = run.data, run.cfg
    if cfg.eval_protocol == "holdout":
        images, labels = data["val"]
        probs = predict_probs(run.model, images, normalization=data["normalization"])
        return probs, labels, f"held-out validation split of the training data ({len(labels)} images)"
    loader = BatchIterator(
        *data["train"],
        500,
        shuffle=False,
        augment=cfg.augment,
        normalize=data["normalization"],
        seed=cfg.seed,
    )
    chunks, labels = zip(*((predict_probs(run.model, x), y) for x, y in loader))
    n = sum(len(y) for y in labels)
    augmented = "augmented " if cfg.augment else ""
    return (
        np.concatenate(chunks, axis=1),
        np.concatenate(labels),
        f"the {augmented}training set, as the official code ({n} images, also trained on)",
    )


def _finite(t: float) -> float | str:
    """JSON has no infinities: write them as strings."""
    return t if math.isfinite(t) else ("inf" if t > 0 else "-inf")


def load_run(checkpoint: str | Path, data_root_override: str | None = None, device: str | None = None) -> Run:
    """Rebuild a run from its checkpoint (with its data split) for evaluation, on ``device`` if given."""
    state = load_checkpoint(checkpoint)
    cfg = saved_config(state)
    if data_root_override:
        cfg = dataclasses.replace(cfg, data_root=data_root_override)
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    run = Run(cfg, load_data(cfg))
    run.restore(state)
    run.checkpoint = Path(checkpoint).resolve()
    return run
