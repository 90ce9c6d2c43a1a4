"""2-D convolution kernels in plain NumPy: the readable specification and the test oracle.

Shapes follow PyTorch: ``x`` is ``(N, C, H, W)``, ``w`` is ``(O, C, kh, kw)`` and the output
``y`` is ``(N, O, Ho, Wo)`` with ``Ho = (H + 2*ph - kh) // sh + 1`` (the same for ``Wo``).
With ``xpad`` the input zero-padded by ``ph`` rows and ``pw`` columns on each side::

    y[n, o, i, j] = sum_{c, p, q} xpad[n, c, i*sh + p, j*sw + q] * w[o, c, p, q]

Each kernel loops over the ``kh * kw`` kernel offsets ``(p, q)``; for one offset the
convolution is a plain channel contraction of a strided view of ``xpad``. The geometry helpers
(:func:`pair`, :func:`conv_output_size`, :func:`check_conv_shapes`) are shared by the CPU and
GPU kernels.
"""
from __future__ import annotations

import numpy as np

IntPair = int | tuple[int, int]


def pair(value: IntPair, name: str = "value") -> tuple[int, int]:
    """Return ``value`` as a pair of ints (an int means the same value on both axes).

    Args:
        value: An int or a sequence of two ints.
        name: The argument name, used in the error message.

    Returns:
        The pair ``(rows, columns)``.

    Raises:
        ValueError: If ``value`` is neither an int nor two ints.
    """
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}") from None


def conv_output_size(
    input_hw: tuple[int, int], kernel_hw: tuple[int, int], stride: IntPair, padding: IntPair
) -> tuple[int, int]:
    """Return the output size ``(Ho, Wo)`` of a convolution, checking that it is possible.

    Args:
        input_hw: Input height and width ``(H, W)``.
        kernel_hw: Kernel height and width ``(kh, kw)``.
        stride: Stride, an int or ``(sh, sw)``; each at least 1.
        padding: Zero padding on each side, an int or ``(ph, pw)``; each at least 0.

    Returns:
        ``(Ho, Wo)`` with ``Ho = (H + 2*ph - kh) // sh + 1``.

    Raises:
        ValueError: If the stride, padding or kernel is invalid, or the padded input is
            smaller than the kernel.
    """
    (h, w), (kh, kw) = input_hw, kernel_hw
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0 or kh < 1 or kw < 1:
        raise ValueError(
            f"conv2d needs stride >= 1, padding >= 0 and kernel >= 1, got stride={stride!r}, "
            f"padding={padding!r}, kernel={tuple(kernel_hw)}"
        )
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(
            f"conv2d kernel {kh}x{kw} is larger than the padded input "
            f"{h + 2 * ph}x{w + 2 * pw} (input {h}x{w}, padding {ph},{pw})"
        )
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def check_conv_shapes(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: IntPair, padding: IntPair
) -> tuple[int, int]:
    """Check an input and weight shape for :func:`conv2d` and return ``(Ho, Wo)``.

    Args:
        x_shape: Input shape, ``(N, C, H, W)``.
        w_shape: Weight shape, ``(O, C, kh, kw)``.
        stride: Stride, an int or ``(sh, sw)``.
        padding: Zero padding, an int or ``(ph, pw)``.

    Returns:
        The output size ``(Ho, Wo)``.

    Raises:
        ValueError: If the shapes are not 4-D, the channels differ or the kernel does not fit.
    """
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(
            f"conv2d expects x (N, C, H, W) and w (O, C, kh, kw), got shapes "
            f"{tuple(x_shape)} and {tuple(w_shape)}"
        )
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"conv2d input has {x_shape[1]} channels but the weight {tuple(w_shape)} expects "
            f"{w_shape[1]}"
        )
    return conv_output_size(x_shape[2:], w_shape[2:], stride, padding)


def check_grad_shape(gy_shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    """Raise ValueError unless the output gradient has the shape the convolution produces."""
    if tuple(gy_shape) != tuple(expected):
        raise ValueError(
            f"conv2d output gradient has shape {tuple(gy_shape)}, expected {tuple(expected)}"
        )


def _window(xpad: np.ndarray, p: int, q: int, out_hw, stride) -> np.ndarray:
    """Return the strided view ``xpad[:, :, i*sh + p, j*sw + q]`` over all ``(i, j)``."""
    (ho, wo), (sh, sw) = out_hw, stride
    return xpad[:, :, p : p + sh * (ho - 1) + 1 : sh, q : q + sw * (wo - 1) + 1 : sw]


def conv2d(x: np.ndarray, w: np.ndarray, stride: IntPair, padding: IntPair) -> np.ndarray:
    """2-D convolution (cross-correlation, as in PyTorch) without bias or groups.

    Args:
        x: Input, ``(N, C, H, W)``.
        w: Weight, ``(O, C, kh, kw)``.
        stride: Stride, an int or ``(sh, sw)``.
        padding: Zero padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``y`` of shape ``(N, O, Ho, Wo)``, C-contiguous.
    """
    out_hw = check_conv_shapes(x.shape, w.shape, stride, padding)
    (ph, pw), s = pair(padding), pair(stride)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((x.shape[0], w.shape[0]) + out_hw, dtype=np.result_type(x, w))
    for p in range(w.shape[2]):
        for q in range(w.shape[3]):
            # y[n,o,i,j] += sum_c xpad[n,c,i*sh+p,j*sw+q] * w[o,c,p,q]
            y += np.einsum("nchw,oc->nohw", _window(xpad, p, q, out_hw, s), w[:, :, p, q])
    return y


def conv2d_input_grad(
    gy: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], stride: IntPair, padding: IntPair
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to its input (a transposed convolution).

    Args:
        gy: Gradient of the output, ``(N, O, Ho, Wo)``.
        w: Weight, ``(O, C, kh, kw)``.
        input_hw: The input size ``(H, W)``; it fixes the output size when a stride makes it
            ambiguous (rows and columns that no window touches get 0).
        stride: Stride, an int or ``(sh, sw)``.
        padding: Zero padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``gx`` of shape ``(N, C, H, W)``, C-contiguous.
    """
    (h, wd), (ph, pw), s = input_hw, pair(padding), pair(stride)
    n, c = gy.shape[0], w.shape[1]
    out_hw = check_conv_shapes((n, c, h, wd), w.shape, stride, padding)
    check_grad_shape(gy.shape, (n, w.shape[0]) + out_hw)
    gxpad = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=np.result_type(gy, w))
    for p in range(w.shape[2]):
        for q in range(w.shape[3]):
            # gxpad[n,c,i*sh+p,j*sw+q] += sum_o gy[n,o,i,j] * w[o,c,p,q]
            _window(gxpad, p, q, out_hw, s)[...] += np.einsum("nohw,oc->nchw", gy, w[:, :, p, q])
    return np.ascontiguousarray(gxpad[:, :, ph : ph + h, pw : pw + wd])


def conv2d_weight_grad(
    x: np.ndarray, gy: np.ndarray, kernel_hw: tuple[int, int], stride: IntPair, padding: IntPair
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to its weight.

    Args:
        x: Input, ``(N, C, H, W)``.
        gy: Gradient of the output, ``(N, O, Ho, Wo)``.
        kernel_hw: The kernel size ``(kh, kw)``.
        stride: Stride, an int or ``(sh, sw)``.
        padding: Zero padding on each side, an int or ``(ph, pw)``.

    Returns:
        ``gw`` of shape ``(O, C, kh, kw)``, C-contiguous.
    """
    (kh, kw), (ph, pw), s = kernel_hw, pair(padding), pair(stride)
    out_hw = check_conv_shapes(x.shape, (gy.shape[1], x.shape[1], kh, kw), stride, padding)
    check_grad_shape(gy.shape, (x.shape[0], gy.shape[1]) + out_hw)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gw = np.empty((gy.shape[1], x.shape[1], kh, kw), dtype=np.result_type(x, gy))
    for p in range(kh):
        for q in range(kw):
            # gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] * xpad[n,c,i*sh+p,j*sw+q]
            gw[:, :, p, q] = np.einsum("nohw,nchw->oc", gy, _window(xpad, p, q, out_hw, s))
    return gw
