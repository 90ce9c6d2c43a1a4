"""CIFAR-10 and CIFAR-100 readers for the official Python layout.

``cifar-10-batches-py/`` holds ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
``batches.meta``; ``cifar-100-python/`` holds ``train``, ``test`` and ``meta``. Each file is a
pickled dict written by Python 2 (string keys come back as ``bytes`` or ``str`` depending on the
``encoding`` used; both are accepted). ``data`` is an ``(N, 3072)`` uint8 array, the R, G and B
32x32 planes one after the other, so a reshape gives NCHW directly.

The pickles are read with an unpickler that only allows the few NumPy names an array needs, so a
tampered file cannot run code. Anything wrong with a file is reported as ``CorruptDatasetError``
naming the file and the problem.
"""

from __future__ import annotations

import codecs
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .download import download_url, md5sum, safe_extract
from .errors import ChecksumError, CorruptDatasetError, DatasetNotFoundError
from .paths import ENV_VAR, PathLike, _root_and_origin, candidate_folders


@dataclass(frozen=True)
class CifarSpec:
    """What identifies one CIFAR variant on disk and on the server."""

    title: str
    folder: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_keys: dict[str, str]
    name_keys: dict[str, str]
    num_classes: dict[str, int]

    @property
    def archive(self) -> str:
        """The archive's file name."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the folder must contain."""
        return self.train_files + self.test_files + (self.meta_file,)


CIFAR_SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        meta_file="batches.meta",
        label_keys={"fine": "labels"},
        name_keys={"fine": "label_names"},
        num_classes={"fine": 10},
    ),
    "cifar100": CifarSpec(
        title="CIFAR-100",
        folder="cifar-100-python",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        label_keys={"fine": "fine_labels", "coarse": "coarse_labels"},
        name_keys={"fine": "fine_label_names", "coarse": "coarse_label_names"},
        num_classes={"fine": 100, "coarse": 20},
    ),
}

_SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}
for _module in ("numpy.core", "numpy._core"):
    _SAFE_GLOBALS[(f"{_module}.multiarray", "_reconstruct")] = np.empty(0).__reduce__()[0]
    _SAFE_GLOBALS[(f"{_module}.multiarray", "scalar")] = np.float64(0).__reduce__()[0]
    _SAFE_GLOBALS[(f"{_module}.numeric", "_frombuffer")] = np.empty(1).__reduce_ex__(5)[0]


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a NumPy array needs."""

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}") from None


def _spec(name: str) -> CifarSpec:
    key = name.lower().replace("-", "")
    if key not in CIFAR_SPECS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(CIFAR_SPECS)}")
    return CIFAR_SPECS[key]


def _label_kind(spec: CifarSpec, label: str | None) -> str:
    kind = "fine" if label is None else label
    if kind not in spec.label_keys:
        raise ValueError(f"{spec.title} has no {kind!r} labels; expected one of {sorted(spec.label_keys)}")
    return kind


def _read_pickle(path: Path) -> dict:
    """Unpickle one CIFAR file and return its dict with ``str`` keys."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
    except OSError:
        raise
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean "corrupt"
        raise CorruptDatasetError(
            f"{path}: cannot be unpickled ({type(exc).__name__}: {exc}); the file is truncated "
            "or damaged. Delete its folder to download it again, or replace the file."
        ) from None
    if not isinstance(obj, dict):
        raise CorruptDatasetError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _get(record: dict, key: str, path: Path):
    if key not in record:
        raise CorruptDatasetError(f"{path}: missing the key {key!r} (found {sorted(map(str, record))})")
    return record[key]


def _read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one data file; return uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``."""
    record = _read_pickle(path)
    data = _get(record, "data", path)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
    ):
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise CorruptDatasetError(
            f"{path}: 'data' must be a uint8 array of shape (N, 3072), found shape {shape} and dtype {dtype}"
        )
    labels = np.asarray(_get(record, label_key, path))
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise CorruptDatasetError(
            f"{path}: {label_key!r} must hold one label per image ({data.shape[0]} images), "
            f"found shape {labels.shape}"
        )
    if labels.size and labels.dtype.kind not in "iu":
        raise CorruptDatasetError(f"{path}: {label_key!r} must be integers, found dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise CorruptDatasetError(
            f"{path}: {label_key!r} must lie in [0, {num_classes - 1}], found values from "
            f"{labels.min()} to {labels.max()}"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _not_found_message(spec: CifarSpec, root: Path, origin: str, problem: str) -> str:
    looked = "\n".join(f"  {p}" for p in candidate_folders(root, spec.folder))
    return (
        f"{spec.title} not found: {problem}\n"
        f"Looked for the folder '{spec.folder}' (with {', '.join(spec.files)}) at:\n{looked}\n"
        f"The data root {root} is {origin}.\n"
        f"To fix: set TINYEXIT_DATA to a folder that contains '{spec.folder}', or pass root=..., "
        f"or put {spec.archive} (from {spec.url}, md5 {spec.md5}) into {root}; with "
        "download=True it is then verified and extracted without the network."
    )


def _download(spec: CifarSpec, root: Path) -> None:
    archive = root / spec.archive
    if archive.exists():  # a local archive is the user's file: verified, never downloaded over
        actual = md5sum(archive)
        if actual != spec.md5:
            raise ChecksumError(
                f"the local archive {archive} has MD5 {actual}, not the official {spec.md5}: it is "
                "incomplete or another file. Delete it to download it again, or replace it with the "
                "official archive"
            )
    else:
        download_url(spec.url, archive, spec.md5)
    safe_extract(archive, root)


def cifar_folder(name: str, root: PathLike | None = None, download: bool = True) -> Path:
    """Return the folder holding a CIFAR dataset, downloading it if it is missing.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: The data root; default ``TINYEXIT_DATA``, else ``~/.tinyexit/data``.
        download: Whether to fetch the official archive when the folder is missing.

    Returns:
        The dataset folder (``.../cifar-10-batches-py`` or ``.../cifar-100-python``).

    Raises:
        DatasetNotFoundError: The folder is missing or incomplete and could not be downloaded.
    """
    spec = _spec(name)
    base, origin = _root_and_origin(root)

    def locate() -> Path | None:
        for folder in candidate_folders(base, spec.folder):
            if folder.is_dir():
                missing = [f for f in spec.files if not (folder / f).is_file()]
                if missing:
                    raise DatasetNotFoundError(
                        _not_found_message(
                            spec,
                            base,
                            origin,
                            f"the folder {folder} exists but lacks {', '.join(missing)}. Replace the "
                            "missing files, or delete the folder to download it again.",
                        )
                    )
                return folder
        return None

    found = locate()
    if found is not None:
        return found
    if not download:
        raise DatasetNotFoundError(
            _not_found_message(spec, base, origin, "the folder is missing and download=False.")
        )
    if (root is not None or os.environ.get(ENV_VAR)) and not base.is_dir():
        raise DatasetNotFoundError(
            _not_found_message(
                spec,
                base,
                origin,
                "the data root does not exist (a chosen root is never created: check the path).",
            )
        )
    try:
        _download(spec, base)
    except ChecksumError as exc:
        raise DatasetNotFoundError(
            _not_found_message(spec, base, origin, f"the folder is missing and {exc}.")
        ) from None
    except (OSError, ValueError, tarfile.TarError) as exc:
        raise DatasetNotFoundError(
            _not_found_message(
                spec,
                base,
                origin,
                f"the folder is missing and downloading {spec.url} failed ({type(exc).__name__}: {exc}).",
            )
        ) from None
    found = locate()
    if found is None:
        raise DatasetNotFoundError(
            _not_found_message(
                spec, base, origin, f"{spec.archive} did not contain the folder '{spec.folder}'."
            )
        )
    return found


def cifar_available(name: str = "cifar10", root: PathLike | None = None) -> bool:
    """Whether a copy of the dataset is already under the data root (this never downloads).

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: The data root; default ``TINYEXIT_DATA``, else ``~/.tinyexit/data``.
    """
    try:
        cifar_folder(name, root, download=False)
        return True
    except DatasetNotFoundError:
        return False


def load_cifar(
    name: str,
    root: PathLike | None = None,
    train: bool = True,
    download: bool = True,
    label: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load CIFAR-10 or CIFAR-100 as NumPy arrays.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: The data root; default ``TINYEXIT_DATA``, else ``~/.tinyexit/data``.
        train: The training set (50,000 images) if True, else the test set (10,000).
        download: Whether to fetch the official archive (MD5-verified) when it is missing.
        label: ``"fine"`` (default) or, for CIFAR-100 only, ``"coarse"`` (20 superclasses).

    Returns:
        ``(images, labels)``: uint8 ``(N, 3, 32, 32)`` in file order, and int64 ``(N,)``.

    Raises:
        DatasetNotFoundError: The dataset is missing and could not be downloaded.
        CorruptDatasetError: A file is damaged or does not follow the format.
    """
    spec = _spec(name)
    kind = _label_kind(spec, label)
    folder = cifar_folder(name, root, download)
    files = spec.train_files if train else spec.test_files
    parts = [_read_batch(folder / f, spec.label_keys[kind], spec.num_classes[kind]) for f in files]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_cifar10(
    root: PathLike | None = None, train: bool = True, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load CIFAR-10; see ``load_cifar``."""
    return load_cifar("cifar10", root, train, download)


def load_cifar100(
    root: PathLike | None = None, train: bool = True, download: bool = True, label: str = "fine"
) -> tuple[np.ndarray, np.ndarray]:
    """Load CIFAR-100 with ``"fine"`` (100 classes) or ``"coarse"`` (20) labels; see ``load_cifar``."""
    return load_cifar("cifar100", root, train, download, label)


def cifar_class_names(
    name: str, root: PathLike | None = None, download: bool = True, label: str | None = None
) -> list[str]:
    """Return the class names stored in a CIFAR meta file, in label order.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: The data root; default ``TINYEXIT_DATA``, else ``~/.tinyexit/data``.
        download: Whether to fetch the archive when it is missing.
        label: ``"fine"`` (default) or, for CIFAR-100, ``"coarse"``.

    Returns:
        One name per class, e.g. ``["airplane", "automobile", ...]`` for CIFAR-10.

    Raises:
        DatasetNotFoundError: The dataset is missing and could not be downloaded.
        CorruptDatasetError: The meta file is damaged or lists the wrong number of names.
    """
    spec = _spec(name)
    kind = _label_kind(spec, label)
    path = cifar_folder(name, root, download) / spec.meta_file
    names = _get(_read_pickle(path), spec.name_keys[kind], path)
    expected = spec.num_classes[kind]
    if (
        not isinstance(names, (list, tuple))
        or len(names) != expected
        or not all(isinstance(n, (str, bytes)) for n in names)
    ):
        raise CorruptDatasetError(f"{path}: {spec.name_keys[kind]!r} must be a list of {expected} strings")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
