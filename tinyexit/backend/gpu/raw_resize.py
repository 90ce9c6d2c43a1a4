"""Bilinear resizing on the GPU: one CUDA kernel for the resize, one for its adjoint.

Same functions, signatures and results as :mod:`tinyexit.backend.reference.resize`. The 1-d
source tables come from :func:`tinyexit.backend.geometry.source_index` (computed once on the host, a
few hundred bytes): output row ``i`` mixes input rows ``i0[i]`` and ``i1[i]`` with weights
``1 - lam[i]`` and ``lam[i]``, columns likewise. Both ``align_corners`` settings are therefore
the same kernel with different tables.

The adjoint is a *gather*: one thread per input pixel ``(h, w)`` sums the output pixels that
read it, so no atomics are needed. Because ``i0`` never decreases, the output rows that read
input row ``h`` (those with ``i0[i] == h`` or ``i1[i] == h``, i.e. ``i0[i]`` in ``{h - 1, h}``)
form one contiguous range ``first[h] .. stop[h] - 1``, also tabulated on the host.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tinyexit.backend import array_module
from tinyexit.backend.geometry import IntPair, check_nchw, check_size, source_index
from tinyexit.backend.gpu import raw_launch

SOURCE = r"""
// Thread t is output (nc, i, j): the bilinear mix of the four source pixels.
extern "C" __global__ void resize(
    long long total, const T* x, T* y, long long H, long long W, long long Ho, long long Wo,
    const long long* h0, const long long* h1, const T* lh,
    const long long* w0, const long long* w1, const T* lw)
{
    FOR_EACH_THREAD(t, total) {
        long long nc = t / (Ho * Wo), i = (t / Wo) % Ho, j = t % Wo;
        const T* top = x + (nc * H + h0[i]) * W;       // input row h0[i] of this plane
        const T* bottom = x + (nc * H + h1[i]) * W;
        y[t] = (1 - lh[i]) * ((1 - lw[j]) * top[w0[j]] + lw[j] * top[w1[j]])
             + lh[i] * ((1 - lw[j]) * bottom[w0[j]] + lw[j] * bottom[w1[j]]);
    }
}

// Weight with which output k reads input k_in along one axis (both taps may hit it when clamped).
__device__ T tap_weight(long long k, long long k_in, const long long* i0, const long long* i1,
                        const T* lam)
{
    return (i0[k] == k_in ? 1 - lam[k] : (T)0) + (i1[k] == k_in ? lam[k] : (T)0);
}

// Thread t is input pixel (nc, h, w): gx = sum over the outputs (i, j) that read it of
// gy[i, j] * weight_h(i, h) * weight_w(j, w).
extern "C" __global__ void resize_adjoint(
    long long total, const T* gy, T* gx, long long H, long long W, long long Ho, long long Wo,
    const long long* h0, const long long* h1, const T* lh,
    const long long* h_first, const long long* h_stop,
    const long long* w0, const long long* w1, const T* lw,
    const long long* w_first, const long long* w_stop)
{
    FOR_EACH_THREAD(t, total) {
        long long nc = t / (H * W), h = (t / W) % H, w = t % W;
        const T* plane = gy + nc * Ho * Wo;
        T sum = 0;
        for (long long i = h_first[h]; i < h_stop[h]; ++i) {
            T weight_h = tap_weight(i, h, h0, h1, lh);
            for (long long j = w_first[w]; j < w_stop[w]; ++j)
                sum += plane[i * Wo + j] * weight_h * tap_weight(j, w, w0, w1, lw);
        }
        gx[t] = sum;
    }
}
"""


@lru_cache(maxsize=128)
def axis_tables(n_in: int, n_out: int, align_corners: bool) -> tuple[np.ndarray, ...]:
    """The host tables of a 1-d linear resize from ``n_in`` to ``n_out``.

    Returns:
        ``(i0, i1, lam, first, stop)``: :func:`tinyexit.backend.geometry.source_index` (length ``n_out``)
        and, for every input index ``k`` (length ``n_in``), the range ``first[k] .. stop[k] - 1``
        of outputs that read it.
    """
    i0, i1, lam = source_index(n_in, n_out, align_corners)
    k = np.arange(n_in)
    first = np.searchsorted(i0, k - 1, side="left")  # first output with i0 >= k - 1
    stop = np.searchsorted(i0, k, side="right")  # past the last output with i0 <= k
    return i0, i1, lam, first.astype(np.int64), stop.astype(np.int64)


def _device_tables(xp, dtype, n_in: int, n_out: int, align_corners: bool) -> tuple:
    """:func:`axis_tables` as arrays of ``xp``, ``lam`` in ``dtype``."""
    i0, i1, lam, first, stop = axis_tables(n_in, n_out, bool(align_corners))
    return (xp.asarray(i0), xp.asarray(i1), xp.asarray(lam, dtype=dtype), xp.asarray(first), xp.asarray(stop))


def interpolate_bilinear(x, size: IntPair, align_corners: bool):
    """As :func:`tinyexit.backend.reference.resize.interpolate_bilinear`, for CuPy arrays."""
    check_nchw(x)
    (h, w), (ho, wo) = check_size(x.shape[2:], "input size"), check_size(size)
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    rows = _device_tables(xp, x.dtype, h, ho, align_corners)[:3]
    cols = _device_tables(xp, x.dtype, w, wo, align_corners)[:3]
    y = xp.empty(x.shape[:2] + (ho, wo), dtype=x.dtype)
    raw_launch.launch(SOURCE, "resize", y.size, x.dtype, (x, y, h, w, ho, wo) + rows + cols)
    return y


def interpolate_bilinear_adjoint(gy, input_hw: IntPair, align_corners: bool):
    """As :func:`tinyexit.backend.reference.resize.interpolate_bilinear_adjoint`, for CuPy arrays."""
    check_nchw(gy, "gy")
    (ho, wo), (h, w) = check_size(gy.shape[2:], "gy size"), check_size(input_hw, "input_hw")
    xp = array_module(gy)
    gy = xp.ascontiguousarray(gy)
    rows = _device_tables(xp, gy.dtype, h, ho, align_corners)
    cols = _device_tables(xp, gy.dtype, w, wo, align_corners)
    gx = xp.empty(gy.shape[:2] + (h, w), dtype=gy.dtype)
    args = (gy, gx, h, w, ho, wo) + rows + cols
    raw_launch.launch(SOURCE, "resize_adjoint", gx.size, gy.dtype, args)
    return gx
