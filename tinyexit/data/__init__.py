"""Datasets as NumPy arrays: CIFAR-10/100, long-tailed subsets, augmentation and batching.

Everything here is plain NumPy; the training code turns the batches into tensors.

>>> from tinyexit.data import load_cifar10, BatchIterator, CIFAR10_MEAN, CIFAR10_STD
>>> images, labels = load_cifar10(train=True)            # uint8 (50000, 3, 32, 32), int64
>>> loader = BatchIterator(images, labels, 64, augment=True, normalize=(CIFAR10_MEAN, CIFAR10_STD))
>>> x, y = next(iter(loader))                             # float32 (64, 3, 32, 32), int64 (64,)
"""

from .cifar import (
    CIFAR_SPECS,
    cifar_available,
    cifar_class_names,
    cifar_folder,
    load_cifar,
    load_cifar10,
    load_cifar100,
)
from .download import check_md5, download_url, md5sum, safe_extract
from .errors import ChecksumError, CorruptDatasetError, DatasetNotFoundError, UnsafeArchiveError
from .loader import BatchIterator
from .long_tail import long_tailed_counts, long_tailed_indices
from .paths import ENV_VAR, data_root
from .split import train_val_split
from .synthetic import synthetic_dataset
from .transforms import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    compute_mean_std,
    crop_flip,
    normalize,
    random_crop_flip,
    sample_crop_flip,
)

__all__ = [
    "BatchIterator",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "CIFAR_SPECS",
    "ChecksumError",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "ENV_VAR",
    "UnsafeArchiveError",
    "check_md5",
    "cifar_class_names",
    "cifar_available",
    "cifar_folder",
    "compute_mean_std",
    "crop_flip",
    "data_root",
    "download_url",
    "load_cifar",
    "load_cifar10",
    "load_cifar100",
    "long_tailed_counts",
    "long_tailed_indices",
    "md5sum",
    "normalize",
    "random_crop_flip",
    "safe_extract",
    "sample_crop_flip",
    "synthetic_dataset",
    "train_val_split",
]
