"""Window geometry of convolution, pooling and resizing: argument checks and output sizes.

One module for what every backend (``reference``, ``cpu``, ``gpu``), ``nn`` and the op counter
need to agree on, as Chainer's ``utils/conv.py``: an "int or pair" argument becomes a pair of
ints (:func:`pair`); a window of size ``k`` sliding with stride ``s`` over ``n`` values padded by
``p`` on each side gives ``(n + 2*p - k) // s + 1`` outputs (:func:`output_size`, PyTorch's
``ceil_mode=False``); :func:`conv_geometry`, :func:`pool_geometry` and :func:`check_size` check
the arguments of each family, so that every backend raises the same errors; :func:`window` is the
strided view that turns a ``kh x kw`` window into ``kh * kw`` whole-array operations; and
:func:`source_index` gives the source rows and weights of a bilinear resize.

Max-pooling indices: ``idx`` holds flat positions ``h*W + w`` in the unpadded input plane.
Every backend checks an ``idx`` it is given (``max_pool2d_scatter``, ``max_pool2d_gather``) with
:func:`check_index` before reading or writing anything: not an integer array raises TypeError,
a shape other than the expected one or an entry outside ``[0, H*W)`` raises ValueError. No
backend wraps or clips an index.
"""

from __future__ import annotations

import numpy as np

IntPair = int | tuple[int, int]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def pair(value: IntPair, name: str, minimum: int = 0) -> tuple[int, int]:
    """Return ``value`` as a pair of Python ints (an int ``v`` becomes ``(v, v)``).

    Args:
        value: A Python or NumPy integer, or a sequence of two of them.
        name: The argument's name, used in the error messages.
        minimum: The smallest value allowed, 0 or 1.

    Returns:
        The pair ``(rows, columns)``.

    Raises:
        TypeError: If ``value`` or one of its two entries is not an integer (a bool or a float,
            for instance).
        ValueError: If ``value`` is a sequence of other than two entries, or an entry is below
            ``minimum``.
    """
    items = (value, value) if _is_int(value) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if not all(_is_int(v) for v in items):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{name} must be {'positive' if minimum else 'non-negative'}, got {value!r}")
    return int(items[0]), int(items[1])


def output_size(
    input_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> tuple[int, int]:
    """Return ``(Ho, Wo)`` with ``Ho = (H + 2*ph - kh) // sh + 1``, the same for ``Wo``."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(input_hw, kernel, stride, padding))


def window(a, row: int, col: int, out_hw: tuple[int, int], stride: tuple[int, int]):
    """Return the strided view ``a[:, :, row + i*sh, col + j*sw]`` over all ``(i, j)`` of ``out_hw``.

    For a padded input, the view holds the element at offset ``(row, col)`` of every window.
    """
    (ho, wo), (sh, sw) = out_hw, stride
    return a[:, :, row : row + sh * (ho - 1) + 1 : sh, col : col + sw * (wo - 1) + 1 : sw]


def conv_geometry(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: IntPair, padding: IntPair
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Check an input shape, weight shape, stride and padding of a convolution.

    Args:
        x_shape: Input shape, ``(N, C, H, W)``.
        w_shape: Weight shape, ``(O, C, kh, kw)``.
        stride: Stride, an int or ``(sh, sw)``; each at least 1.
        padding: Zero padding on each side, an int or ``(ph, pw)``; each at least 0.

    Returns:
        ``((sh, sw), (ph, pw), (Ho, Wo))``.

    Raises:
        ValueError: If the shapes are not 4-D, the channels differ, the kernel is empty or
            larger than the padded input, or the stride or padding is out of range.
        TypeError: If the stride or padding is not an int or a pair of ints.
    """
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(
            f"conv2d expects x (N, C, H, W) and w (O, C, kh, kw), got shapes "
            f"{tuple(x_shape)} and {tuple(w_shape)}"
        )
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"conv2d input has {x_shape[1]} channels but the weight {tuple(w_shape)} expects {w_shape[1]}"
        )
    s, p = pair(stride, "stride", minimum=1), pair(padding, "padding")
    (h, w), (kh, kw) = x_shape[2:], pair(w_shape[2:], "kernel size", minimum=1)
    if h + 2 * p[0] < kh or w + 2 * p[1] < kw:
        raise ValueError(
            f"conv2d kernel {kh}x{kw} is larger than the padded input "
            f"{h + 2 * p[0]}x{w + 2 * p[1]} (input {h}x{w}, padding {p[0]},{p[1]})"
        )
    return s, p, output_size((h, w), (kh, kw), s, p)


def check_conv_grad(gy_shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    """Raise ValueError unless the output gradient has the shape the convolution produces."""
    if tuple(gy_shape) != tuple(expected):
        raise ValueError(f"conv2d output gradient has shape {tuple(gy_shape)}, expected {tuple(expected)}")


def check_nchw(x, name: str = "input") -> None:
    """Raise unless ``x`` is a 4-d (N, C, H, W) float32 or float64 array."""
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-d (N, C, H, W) array, got shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")


def pool_geometry(
    input_hw: tuple[int, int], kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Check pooling arguments as PyTorch does and compute the output size.

    Args:
        input_hw: Height and width ``(H, W)`` of the unpadded input.
        kernel_size: Window size, an int or ``(kh, kw)``.
        stride: Window step, an int or ``(sh, sw)``; ``None`` means ``kernel_size``.
        padding: Implicit padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``((kh, kw), (sh, sw), (ph, pw), (Ho, Wo))``.

    Raises:
        ValueError: On non-positive kernel or stride, negative padding, padding larger than
            half the kernel, or an output smaller than 1x1.
        TypeError: If an argument is not an int or a pair of ints.
    """
    k = pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p, hw = pair(padding, "padding"), pair(input_hw, "input_hw")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"padding should be at most half of kernel size, got padding={p}, kernel_size={k}")
    out = output_size(hw, k, s, p)
    if min(hw) < 1 or min(out) < 1:
        raise ValueError(
            f"input of size {hw} is too small for kernel_size={k}, stride={s}, padding={p}: "
            f"the output size would be {out}"
        )
    return k, s, p, out


def check_pool_grad(gy, out: tuple[int, int]) -> None:
    """Raise unless ``gy`` has the spatial size ``out`` that the pooling produces."""
    if tuple(gy.shape[2:]) != tuple(out):
        raise ValueError(f"gy has spatial size {tuple(gy.shape[2:])} but the pooling gives {tuple(out)}")


def check_index(idx, shape: tuple[int, ...], plane_size: int) -> None:
    """Raise unless ``idx`` is an integer array of ``shape`` with every entry in ``[0, plane_size)``."""
    if idx.dtype.kind not in "iu":
        raise TypeError(f"idx must be an integer array, got {idx.dtype}")
    if idx.ndim != 4 or tuple(idx.shape) != tuple(shape):
        raise ValueError(f"idx has shape {tuple(idx.shape)}, expected {tuple(shape)}")
    if idx.size and not (0 <= int(idx.min()) and int(idx.max()) < plane_size):
        raise ValueError(f"idx must lie in [0, {plane_size}), the flat input-plane positions")


def check_size(size: IntPair, name: str = "size") -> tuple[int, int]:
    """Return a resize's ``size`` as ``(h, w)``, or raise ValueError if a side is smaller than 1."""
    hw = pair(size, name)
    if min(hw) < 1:
        raise ValueError(f"{name} must be at least 1x1, got {hw}")
    return hw


def source_index(n_in: int, n_out: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows (or columns) and weights of a 1-d linear resize from ``n_in`` to ``n_out``.

    Args:
        n_in: Input length.
        n_out: Output length.
        align_corners: PyTorch's ``align_corners``.

    Returns:
        ``(i0, i1, lam)``: int64 arrays of length ``n_out`` and the float64 weight of ``i1``;
        output ``k`` is ``(1 - lam[k]) * v[i0[k]] + lam[k] * v[i1[k]]``.
    """
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.maximum((dst + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0
