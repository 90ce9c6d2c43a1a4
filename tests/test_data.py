"""The data package: CIFAR readers, download and extraction, subsets, augmentation, batching."""

import dataclasses
import hashlib
import io
import json
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tinyexit.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR_SPECS,
    BatchIterator,
    ChecksumError,
    CorruptDatasetError,
    DatasetNotFoundError,
    UnsafeArchiveError,
    cifar_class_names,
    compute_mean_std,
    crop_flip,
    data_root,
    download_url,
    load_cifar,
    load_cifar10,
    load_cifar100,
    long_tailed_counts,
    long_tailed_indices,
    md5sum,
    normalize,
    random_crop_flip,
    safe_extract,
    sample_crop_flip,
    synthetic_dataset,
    train_val_split,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def no_env_root(monkeypatch):
    monkeypatch.delenv("TINYEXIT_DATA", raising=False)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)


# ---------------------------------------------------------------- CIFAR-10 on the shared copy


@pytest.fixture(scope="module")
def cifar10_root():
    if not (SHARED_DATA / "cifar-10-batches-py" / "batches.meta").is_file():
        pytest.skip(f"no CIFAR-10 copy at {SHARED_DATA / 'cifar-10-batches-py'}")
    return SHARED_DATA


def test_cifar10_train_and_test(cifar10_root):
    images, labels = load_cifar10(root=cifar10_root, download=False)
    assert images.shape == (50_000, 3, 32, 32) and images.dtype == np.uint8
    assert labels.shape == (50_000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [5_000] * 10
    images, labels = load_cifar("cifar10", root=cifar10_root, train=False, download=False)
    assert images.shape == (10_000, 3, 32, 32) and np.bincount(labels).tolist() == [1_000] * 10
    assert cifar_class_names("cifar10", root=cifar10_root) == CIFAR10_NAMES


def test_cifar10_through_env_var(cifar10_root, monkeypatch):
    monkeypatch.setenv("TINYEXIT_DATA", str(cifar10_root))
    assert data_root() == cifar10_root.resolve()
    assert cifar_class_names("cifar10", download=False) == CIFAR10_NAMES
    monkeypatch.setenv("TINYEXIT_DATA", str(cifar10_root / "cifar-10-batches-py"))
    assert cifar_class_names("CIFAR-10", download=False) == CIFAR10_NAMES


def test_cifar10_channels_are_rgb_planes(cifar10_root):
    with open(cifar10_root / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    images, _ = load_cifar10(root=cifar10_root, train=False)
    np.testing.assert_array_equal(images[7, 1].ravel(), raw[7, 1024:2048])


def test_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_root() == tmp_path / ".tinyexit" / "data"
    monkeypatch.setenv("TINYEXIT_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"


# ---------------------------------------------------------------- CIFAR-100 on files we write


def write_cifar100(root, n_train=12, n_test=5, bytes_keys=True, seed=0):
    """Write a tiny CIFAR-100 in the official layout; return what was written."""
    rng = np.random.default_rng(seed)
    enc = (lambda s: s.encode("latin1")) if bytes_keys else (lambda s: s)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, size=n).tolist()
        coarse = [f // 5 for f in fine]
        record = {
            enc("data"): data,
            enc("fine_labels"): fine,
            enc("coarse_labels"): coarse,
            enc("filenames"): [enc(f"img{i}.png") for i in range(n)],
        }
        (folder / split).write_bytes(pickle.dumps(record, protocol=2))
        written[split] = (data, fine, coarse)
    meta = {
        enc("fine_label_names"): [enc(f"fine{i}") for i in range(100)],
        enc("coarse_label_names"): [enc(f"coarse{i}") for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar100_fine_and_coarse(tmp_path, bytes_keys):
    written = write_cifar100(tmp_path, bytes_keys=bytes_keys)
    images, fine = load_cifar100(root=tmp_path, download=False)
    data, fine_written, coarse_written = written["train"]
    assert images.shape == (12, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images.reshape(12, -1), data)
    assert fine.dtype == np.int64 and fine.tolist() == fine_written
    _, coarse = load_cifar100(root=tmp_path, train=False, label="coarse", download=False)
    assert coarse.tolist() == written["test"][2]
    assert cifar_class_names("cifar100", root=tmp_path)[:2] == ["fine0", "fine1"]
    assert len(cifar_class_names("cifar100", root=tmp_path, label="coarse")) == 20
    with pytest.raises(ValueError, match="no 'coarse' labels"):
        load_cifar("cifar10", root=tmp_path, label="coarse")


# ---------------------------------------------------------------- missing and corrupted files


def test_missing_without_download_names_paths_and_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10(root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "download=False" in message and "TINYEXIT_DATA" in message and "root=" in message


def test_missing_offline_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar100()
    message = str(info.value)
    default = tmp_path / ".tinyexit" / "data"
    assert str(default / "cifar-100-python") in message
    assert "TINYEXIT_DATA is not set" in message
    assert "network is unreachable" in message and CIFAR_SPECS["cifar100"].url in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert not [p for p in default.iterdir() if p.name.endswith(".part")]


def test_incomplete_folder_lists_missing_files(tmp_path):
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").unlink()
    with pytest.raises(DatasetNotFoundError, match="lacks test"):
        load_cifar100(root=tmp_path)


def corrupt(tmp_path, split="train", **changes):
    """Rewrite one file of a tiny CIFAR-100 with some keys replaced (str keys)."""
    write_cifar100(tmp_path, bytes_keys=False)
    path = tmp_path / "cifar-100-python" / split
    record = pickle.loads(path.read_bytes())
    record.update(changes)
    path.write_bytes(pickle.dumps(record))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(data=np.zeros((12, 3000), np.uint8)), r"shape \(N, 3072\), found shape \(12, 3000\)"),
        (dict(data=np.zeros((12, 3072), np.float32)), "dtype float32"),
        (dict(fine_labels=[0] * 11), "one label per image"),
        (dict(fine_labels=[100] * 12), r"must lie in \[0, 99\]"),
        (dict(fine_labels=["a"] * 12), "must be integers"),
        (dict(fine_labels=None, data="x"), "uint8 array"),
    ],
)
def test_bad_contents_name_file_and_problem(tmp_path, changes, message):
    path = corrupt(tmp_path, **changes)
    with pytest.raises(CorruptDatasetError, match=message) as info:
        load_cifar100(root=tmp_path)
    assert str(path) in str(info.value)


def test_missing_key_and_truncated_and_foreign_pickles(tmp_path):
    write_cifar100(tmp_path, bytes_keys=False)
    folder = tmp_path / "cifar-100-python"
    record = pickle.loads((folder / "train").read_bytes())
    del record["fine_labels"]
    (folder / "train").write_bytes(pickle.dumps(record))
    with pytest.raises(CorruptDatasetError, match="missing the key 'fine_labels'"):
        load_cifar100(root=tmp_path)
    blob = (folder / "test").read_bytes()
    (folder / "test").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CorruptDatasetError, match=r"test: cannot be unpickled .* truncated") as info:
        load_cifar100(root=tmp_path, train=False)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    (folder / "test").write_bytes(pickle.dumps({"data": os.getcwd}))
    with pytest.raises(CorruptDatasetError, match="refusing to load the global"):
        load_cifar100(root=tmp_path, train=False)
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": ["a"] * 99}))
    with pytest.raises(CorruptDatasetError, match="list of 100 strings"):
        cifar_class_names("cifar100", root=tmp_path)
    (folder / "meta").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CorruptDatasetError, match="expected a pickled dict"):
        cifar_class_names("cifar100", root=tmp_path)


# ---------------------------------------------------------------- download, md5, extraction


def serve(monkeypatch, content):
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(content)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


def test_download_verifies_md5(tmp_path, monkeypatch):
    content = b"some archive bytes" * 1000
    good = hashlib.md5(content).hexdigest()
    serve(monkeypatch, content)
    dest = download_url("https://example.invalid/a.tar.gz", tmp_path / "a.tar.gz", good)
    assert dest.read_bytes() == content and md5sum(dest) == good
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        download_url("https://example.invalid/b.tar.gz", tmp_path / "b.tar.gz", "0" * 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]


def make_tar(path, members):
    """Write a .tar.gz with ``members``: name -> bytes (a file) or None (a folder)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_safe_extract(tmp_path):
    archive = make_tar(tmp_path / "ok.tar.gz", {"pkg": None, "pkg/a.txt": b"a", "pkg/sub/b.txt": b"b"})
    dest = tmp_path / "dest"
    assert safe_extract(archive, dest) == [dest / "pkg"]
    assert (dest / "pkg" / "sub" / "b.txt").read_bytes() == b"b"
    assert sorted(p.name for p in dest.iterdir()) == ["pkg"]


@pytest.mark.parametrize("name", ["../evil.txt", "pkg/../../evil.txt", "/tmp/evil.txt"])
def test_safe_extract_rejects_escaping_members(tmp_path, name):
    archive = make_tar(tmp_path / "bad.tar.gz", {"pkg/a.txt": b"a", name: b"evil"})
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(UnsafeArchiveError, match="outside the destination"):
        safe_extract(archive, dest)
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not any(dest.iterdir())


def test_safe_extract_rejects_links(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("pkg/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="links"):
        safe_extract(archive, tmp_path / "dest")


def test_download_extract_and_load_end_to_end(tmp_path, monkeypatch):
    written = write_cifar100(tmp_path / "src")
    src = tmp_path / "src" / "cifar-100-python"
    archive = make_tar(
        tmp_path / "cifar-100-python.tar.gz",
        {f"cifar-100-python/{f}": (src / f).read_bytes() for f in ("train", "test", "meta")},
    )
    content = archive.read_bytes()
    spec = dataclasses.replace(CIFAR_SPECS["cifar100"], md5=hashlib.md5(content).hexdigest())
    monkeypatch.setitem(CIFAR_SPECS, "cifar100", spec)
    calls = serve(monkeypatch, content)
    root = tmp_path / "root"
    root.mkdir()  # a chosen root must exist: it is never created (only the default one is)
    images, labels = load_cifar100(root=root)
    assert calls == [spec.url]
    np.testing.assert_array_equal(images.reshape(len(images), -1), written["train"][0])
    assert sorted(p.name for p in root.iterdir()) == ["cifar-100-python", "cifar-100-python.tar.gz"]
    # A verified archive already in the root is extracted without the network.
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    (root / "cifar-100-python").rename(tmp_path / "moved")
    assert load_cifar100(root=root, train=False)[0].shape == (5, 3, 32, 32)


def test_wrong_checksum_download_is_a_clear_error(tmp_path, monkeypatch):
    serve(monkeypatch, b"not the archive")
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch") as info:
        load_cifar10(root=tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- long tail and split

CIFAR10_LT_COUNTS = {
    200: [5000, 2775, 1540, 854, 474, 263, 146, 81, 45, 25],
    100: [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50],
    50: [5000, 3237, 2096, 1357, 878, 568, 368, 238, 154, 100],
    20: [5000, 3584, 2569, 1842, 1320, 946, 678, 486, 348, 250],
}


@pytest.mark.parametrize("factor", sorted(CIFAR10_LT_COUNTS))
def test_long_tail_counts(factor):
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 5000))
    idx = long_tailed_indices(labels, factor)
    assert np.bincount(labels[idx], minlength=10).tolist() == CIFAR10_LT_COUNTS[factor]
    assert np.all(np.diff(idx) > 0) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, long_tailed_indices(labels, factor, seed=0))
    assert not np.array_equal(idx, long_tailed_indices(labels, factor, seed=1))


def test_long_tail_rounding_and_cifar100_sizes():
    assert long_tailed_counts(5000, 10, 100, rounding="round") == [
        5000,
        2997,
        1797,
        1077,
        646,
        387,
        232,
        139,
        83,
        50,
    ]
    assert sum(long_tailed_counts(500, 100, 100)) == 10_847
    assert long_tailed_counts(500, 100, 1) == [500] * 100
    with pytest.raises(ValueError, match=">= 1"):
        long_tailed_counts(500, 100, 0.5)


def test_train_val_split():
    train, val = train_val_split(1000, 100, seed=3)
    assert len(train) == 900 and len(val) == 100
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(1000))
    again = train_val_split(1000, 100, seed=3)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, train_val_split(1000, 100, seed=4)[1])
    assert len(train_val_split(1000, 0.25)[1]) == 250
    with pytest.raises(ValueError):
        train_val_split(10, 11)


# ---------------------------------------------------------------- normalisation and augmentation


def test_normalize_and_mean_std():
    images, _ = synthetic_dataset(64, seed=0)
    mean, std = compute_mean_std(images, chunk=10)
    x = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3)), rtol=1e-8)
    out = normalize(images, mean, std)
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(normalize(images), x, atol=1e-6)
    expected = (x - np.array(CIFAR10_MEAN)[:, None, None]) / np.array(CIFAR10_STD)[:, None, None]
    np.testing.assert_allclose(normalize(images, CIFAR10_MEAN, CIFAR10_STD), expected, atol=1e-5)


def test_crop_flip_is_a_shift_of_the_padded_image_and_flips_the_chosen():
    images, _ = synthetic_dataset(50, seed=1)
    rng = np.random.default_rng(0)
    dy, dx, flip = sample_crop_flip(50, rng)
    assert dy.min() >= 0 and dy.max() <= 8 and dx.min() >= 0 and dx.max() <= 8
    out = crop_flip(images, dy, dx, flip)
    assert out.shape == images.shape and out.dtype == images.dtype
    padded = np.pad(images, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for i in range(50):
        crop = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        np.testing.assert_array_equal(out[i], crop[:, :, ::-1] if flip[i] else crop)
    centred = crop_flip(images, np.full(50, 4), np.full(50, 4), flip)
    np.testing.assert_array_equal(centred[flip], images[flip][..., ::-1])
    np.testing.assert_array_equal(centred[~flip], images[~flip])


def test_random_crop_flip_statistics():
    images = np.ones((4000, 1, 32, 32), dtype=np.uint8)
    images[:, :, :, :16] = 2  # left half 2, right half 1: a flip moves the 2s to the right
    out = random_crop_flip(images, np.random.default_rng(0))
    flipped = out[:, 0, 16, 24] == 2  # column 24 shows original columns 20..28, or 3..11 if flipped
    assert 0.45 < flipped.mean() < 0.55
    assert 0.975 < (out == 0).any(axis=(1, 2, 3)).mean() < 0.999  # only dy = dx = 4 (1/81) shows no padding
    np.testing.assert_array_equal(out, random_crop_flip(images, np.random.default_rng(0)))


# ---------------------------------------------------------------- batching


def test_batch_iterator_covers_each_sample_once_per_epoch():
    n = 103
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(2, axis=2)
    loader = BatchIterator(images, np.arange(n), batch_size=10, seed=5)
    assert len(loader) == 11
    assert len(BatchIterator(images, np.arange(n), 10, drop_last=True)) == 10
    orders = []
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == 11 and batches[-1][1].shape == (3,)
        x, y = batches[0]
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_allclose(x[:, 0, 0, 0] * 255, y, atol=1e-4)
        order = np.concatenate([b[1] for b in batches])
        assert sorted(order) == list(range(n))
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])
    assert loader.epoch == 2
    fresh = BatchIterator(images, np.arange(n), batch_size=10, seed=5)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in fresh]), orders[0])
    plain = BatchIterator(images, np.arange(n), batch_size=10, shuffle=False)
    assert np.concatenate([b[1] for b in plain]).tolist() == list(range(n))


def test_batch_iterator_resume_is_exact():
    images, labels = synthetic_dataset(70, seed=2)
    settings = dict(batch_size=16, augment=True, normalize=(CIFAR10_MEAN, CIFAR10_STD), seed=7)
    reference = BatchIterator(images, labels, **settings)
    expected = [b for _ in range(3) for b in reference]
    run = BatchIterator(images, labels, **settings)
    seen = list(run)  # one full epoch of 5 batches
    it = iter(run)
    seen += [next(it), next(it)]  # and 2 of the next
    state = json.loads(json.dumps(run.state_dict()))
    assert state == {"seed": 7, "epoch": 1, "batch": 2}
    resumed = BatchIterator(images, labels, **settings)
    resumed.load_state_dict(state)
    seen += list(resumed) + list(resumed)
    assert len(seen) == len(expected) == 15
    for (x, y), (x_ref, y_ref) in zip(seen, expected):
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)
    assert not np.array_equal(expected[0][0], expected[5][0])


# ---------------------------------------------------------------- synthetic data


def test_synthetic_dataset_is_deterministic_balanced_and_learnable():
    images, labels = synthetic_dataset(2000, num_classes=10, seed=0)
    assert images.shape == (2000, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [200] * 10
    again = synthetic_dataset(2000, num_classes=10, seed=0)
    np.testing.assert_array_equal(images, again[0])
    test_images, test_labels = synthetic_dataset(1000, num_classes=10, seed=1)
    assert not np.array_equal(images[:1000], test_images)
    assert set(synthetic_dataset(30, num_classes=3, seed=0)[1].tolist()) == {0, 1, 2}
    for bad, message in (({"noise": -0.1}, "noise must be >= 0"), ({"num_classes": 11}, "between 1 and 10")):
        with pytest.raises(ValueError, match=message):
            synthetic_dataset(4, **bad)


def _shape_and_background(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey brightness above the background (n, 32, 32) and the background colour (n, 3): border medians."""
    x = images.astype(np.float64) / 255
    border = np.concatenate([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], axis=2)
    background = np.median(border, axis=2)
    return (x - background[:, :, None, None]).mean(axis=1), background


def _nearest_centroid(train: np.ndarray, train_labels, test: np.ndarray, test_labels) -> np.ndarray:
    """Whether each test feature vector is nearest to the mean training vector of its class."""
    train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    centroids = np.stack([train[train_labels == c].mean(axis=0) for c in range(10)])
    return ((test[:, None] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1) == test_labels


def test_synthetic_classes_are_shapes_whose_detail_matters_with_a_colour_cue_in_some_images():
    images, labels = synthetic_dataset(3000, seed=0)
    test_images, test_labels = synthetic_dataset(1000, seed=1)
    (shape, background), (test_shape, test_background) = map(_shape_and_background, (images, test_images))

    def blocks(x, k):  # the mean of every k x k block: what is left at a coarser scale
        return x.reshape(len(x), 32 // k, k, 32 // k, k).mean(axis=(2, 4))

    # the shape is the class: matching it with class templates works at full resolution (chance
    # is 0.1) and loses much of its accuracy on a 4x4 map, where outlines and corners blur away
    full = _nearest_centroid(shape, labels, test_shape, test_labels).mean()
    coarse = _nearest_centroid(blocks(shape, 8), labels, blocks(test_shape, 8), test_labels).mean()
    assert full > 0.45 and coarse < full - 0.12, (full, coarse)
    # the background tint gives the class away in some images only: the strongest-tinted third
    # is much easier to classify by colour than the faintest one, and colour alone is far from enough
    right = _nearest_centroid(background, labels, test_background, test_labels)
    tint = np.linalg.norm(test_background - test_background.mean(axis=1, keepdims=True), axis=1)
    order = np.argsort(tint)
    assert 0.15 < right.mean() < 0.5 and right[order[-333:]].mean() > right[order[:333]].mean() + 0.15
