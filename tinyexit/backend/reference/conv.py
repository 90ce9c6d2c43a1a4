"""2-D convolution kernels in plain NumPy: the readable specification and the test oracle.

Shapes follow PyTorch: ``x`` is ``(N, C, H, W)``, ``w`` is ``(O, C, kh, kw)`` and the output
``y`` is ``(N, O, Ho, Wo)`` with ``Ho = (H + 2*ph - kh) // sh + 1`` (the same for ``Wo``).
With ``xpad`` the input zero-padded by ``ph`` rows and ``pw`` columns on each side::

    y[n, o, i, j] = sum_{c, p, q} xpad[n, c, i*sh + p, j*sw + q] * w[o, c, p, q]

Each kernel loops over the ``kh * kw`` kernel offsets ``(p, q)``; for one offset the
convolution is a plain channel contraction of a strided view of ``xpad``. The argument checks
live in :mod:`tinyexit.backend.geometry`.
"""

from __future__ import annotations

import numpy as np

from tinyexit.backend.geometry import IntPair, check_conv_grad, conv_geometry, window


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
    s, (ph, pw), out_hw = conv_geometry(x.shape, w.shape, stride, padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((x.shape[0], w.shape[0]) + out_hw, dtype=np.result_type(x, w))
    for p in range(w.shape[2]):
        for q in range(w.shape[3]):
            # y[n,o,i,j] += sum_c xpad[n,c,i*sh+p,j*sw+q] * w[o,c,p,q]
            y += np.einsum("nchw,oc->nohw", window(xpad, p, q, out_hw, s), w[:, :, p, q])
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
    (h, wd), n, c = input_hw, gy.shape[0], w.shape[1]
    s, (ph, pw), out_hw = conv_geometry((n, c, h, wd), w.shape, stride, padding)
    check_conv_grad(gy.shape, (n, w.shape[0]) + out_hw)
    gxpad = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=np.result_type(gy, w))
    for p in range(w.shape[2]):
        for q in range(w.shape[3]):
            # gxpad[n,c,i*sh+p,j*sw+q] += sum_o gy[n,o,i,j] * w[o,c,p,q]
            window(gxpad, p, q, out_hw, s)[...] += np.einsum("nohw,oc->nchw", gy, w[:, :, p, q])
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
    kh, kw = kernel_hw
    s, (ph, pw), out_hw = conv_geometry(x.shape, (gy.shape[1], x.shape[1], kh, kw), stride, padding)
    check_conv_grad(gy.shape, (x.shape[0], gy.shape[1]) + out_hw)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gw = np.empty((gy.shape[1], x.shape[1], kh, kw), dtype=np.result_type(x, gy))
    for p in range(kh):
        for q in range(kw):
            # gw[o,c,p,q] = sum_{n,i,j} gy[n,o,i,j] * xpad[n,c,i*sh+p,j*sw+q]
            gw[:, :, p, q] = np.einsum("nohw,nchw->oc", gy, window(xpad, p, q, out_hw, s))
    return gw
