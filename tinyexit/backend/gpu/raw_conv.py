"""2-D convolution on the GPU: im2col and col2im as one CUDA kernel each, plus cuBLAS products.

Same functions, signatures and results as :mod:`tinyexit.backend.reference.conv`. The column
matrix is channels-first, ``cols[(c, p, q), (n, i, j)]`` of shape ``(C*kh*kw, N*Ho*Wo)``; the
products around it are those of the array-module :mod:`.conv`, which takes these column kernels::

    forward      Y  (O, N*Ho*Wo) = w (O, C*kh*kw) @ cols             (cols from IM2COL)
    input grad   dcols           = w.T @ gy_cnhw (O, N*Ho*Wo);  gx = COL2IM(dcols)
    weight grad  gw (O, C*kh*kw) = gy_cnhw @ cols.T

COL2IM is written as a *gather*: one thread per input pixel sums the column entries that read
it, so no two threads write the same address (no atomics, and the sum order is fixed).
"""

from __future__ import annotations

from tinyexit.backend import array_module
from tinyexit.backend.geometry import IntPair
from tinyexit.backend.gpu import conv as array_conv
from tinyexit.backend.gpu import raw_launch

SOURCE = r"""
// cols[(c, p, q), (n, i, j)] = x[n, c, i*sh - ph + p, j*sw - pw + q], or 0 in the padding.
extern "C" __global__ void im2col(
    long long total, const T* x, T* cols,
    long long N, long long C, long long H, long long W,
    long long kh, long long kw, long long Ho, long long Wo,
    long long sh, long long sw, long long ph, long long pw)
{
    FOR_EACH_THREAD(t, total) {
        long long row = t / (N * Ho * Wo);        // (c, p, q)
        long long col = t % (N * Ho * Wo);        // (n, i, j)
        long long c = row / (kh * kw), p = (row / kw) % kh, q = row % kw;
        long long n = col / (Ho * Wo), i = (col / Wo) % Ho, j = col % Wo;
        long long h = i * sh - ph + p, w = j * sw - pw + q;
        bool inside = 0 <= h && h < H && 0 <= w && w < W;
        cols[t] = inside ? x[((n * C + c) * H + h) * W + w] : (T)0;
    }
}

// gx[n, c, h, w] = sum over (p, q, i, j) with i*sh - ph + p == h and j*sw - pw + q == w
//                  of dcols[(c, p, q), (n, i, j)]
extern "C" __global__ void col2im(
    long long total, const T* dcols, T* gx,
    long long N, long long C, long long H, long long W,
    long long kh, long long kw, long long Ho, long long Wo,
    long long sh, long long sw, long long ph, long long pw)
{
    FOR_EACH_THREAD(t, total) {
        long long n = t / (C * H * W), c = (t / (H * W)) % C;
        long long h = (t / W) % H, w = t % W;
        T sum = 0;
        for (long long p = 0; p < kh; ++p) {
            long long hi = h + ph - p;             // = i * sh for the row i that reads h
            if (hi < 0 || hi % sh != 0 || hi / sh >= Ho) continue;
            long long i = hi / sh;
            for (long long q = 0; q < kw; ++q) {
                long long wj = w + pw - q;         // = j * sw
                if (wj < 0 || wj % sw != 0 || wj / sw >= Wo) continue;
                long long j = wj / sw;
                long long row = (c * kh + p) * kw + q, col = (n * Ho + i) * Wo + j;
                sum += dcols[row * (N * Ho * Wo) + col];
            }
        }
        gx[t] = sum;
    }
}
"""


def _geometry(x_shape, kernel_hw, out_hw, stride, padding) -> tuple[int, ...]:
    """The shared size arguments ``N, C, H, W, kh, kw, Ho, Wo, sh, sw, ph, pw`` of both kernels."""
    return tuple(x_shape) + tuple(kernel_hw) + tuple(out_hw) + tuple(stride) + tuple(padding)


def _im2col(x, kernel_hw, out_hw, stride, padding):
    """Return ``cols`` of shape ``(C*kh*kw, N*Ho*Wo)`` with rows ``(c, p, q)`` (one launch)."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    (n, c), (kh, kw) = x.shape[:2], kernel_hw
    cols = xp.empty((c * kh * kw, n * out_hw[0] * out_hw[1]), dtype=x.dtype)
    geometry = _geometry(x.shape, kernel_hw, out_hw, stride, padding)
    raw_launch.launch(SOURCE, "im2col", cols.size, x.dtype, (x, cols) + geometry)
    return cols


def _col2im(dcols, input_shape, kernel_hw, out_hw, stride, padding):
    """Return the input-shaped sum of the columns ``dcols`` (one launch, no atomics)."""
    xp = array_module(dcols)
    dcols = xp.ascontiguousarray(dcols)
    gx = xp.empty(tuple(input_shape), dtype=dcols.dtype)
    geometry = _geometry(gx.shape, kernel_hw, out_hw, stride, padding)
    raw_launch.launch(SOURCE, "col2im", gx.size, dcols.dtype, (dcols, gx) + geometry)
    return gx


def conv2d(x, w, stride: IntPair, padding: IntPair):
    """As :func:`tinyexit.backend.reference.conv.conv2d`, for CuPy arrays."""
    return array_conv.conv2d(x, w, stride, padding, im2col=_im2col)


def conv2d_input_grad(gy, w, input_hw: tuple[int, int], stride: IntPair, padding: IntPair):
    """As :func:`tinyexit.backend.reference.conv.conv2d_input_grad`, for CuPy arrays."""
    return array_conv.conv2d_input_grad(gy, w, input_hw, stride, padding, col2im=_col2im)


def conv2d_weight_grad(x, gy, kernel_hw: tuple[int, int], stride: IntPair, padding: IntPair):
    """As :func:`tinyexit.backend.reference.conv.conv2d_weight_grad`, for CuPy arrays."""
    return array_conv.conv2d_weight_grad(x, gy, kernel_hw, stride, padding, im2col=_im2col)
