"""Max and average pooling on the GPU: one CUDA kernel per function, one thread per output.

Same functions, signatures and results as :mod:`tinyexit.backend.reference.pool`. Output
position ``(i, j)`` owns the input window of rows ``i*sh - ph .. i*sh - ph + kh - 1`` and
columns ``j*sw - pw .. j*sw - pw + kw - 1``, clipped to the input (padding never wins a
maximum and adds zero to a sum). The average-pooling adjoint is a *gather*: one thread per input
pixel visits the output windows that contain it, so no two threads write the same address and
the sum runs in a fixed order (no atomics). The windows containing row ``h`` are the rows ``i`` with
``i*sh <= h + ph <= i*sh + kh - 1``, i.e. ``ceil((h + ph - kh + 1) / sh) <= i <= (h + ph) / sh``.
"""

from __future__ import annotations

from tinyexit.backend import array_module
from tinyexit.backend.geometry import IntPair, check_index, check_nchw, check_pool_grad, pair, pool_geometry
from tinyexit.backend.gpu import raw_launch

SOURCE = r"""
// Minus infinity of type T: the double +inf (exponent bits all 1, mantissa 0), negated.
#define MINUS_INFINITY ((T)(-__longlong_as_double(0x7ff0000000000000LL)))

// First and last output index (inclusive) whose window, of size k at step s after padding pad,
// contains input index h; the range is empty (first > last) when none does.
__device__ void windows_containing(long long h, long long k, long long s, long long pad,
                                   long long n_out, long long* first, long long* last)
{
    long long lowest = h + pad - k + 1;           // i*s >= lowest
    *first = lowest <= 0 ? 0 : (lowest + s - 1) / s;
    *last = min((h + pad) / s, n_out - 1);        // i*s <= h + pad
}

// Thread t is output (nc, i, j) with nc = n*C + c; planes are H x W in, Ho x Wo out.
extern "C" __global__ void avg_pool(
    long long total, const T* x, T* y, long long H, long long W, long long Ho, long long Wo,
    long long kh, long long kw, long long sh, long long sw, long long ph, long long pw)
{
    FOR_EACH_THREAD(t, total) {
        long long nc = t / (Ho * Wo), i = (t / Wo) % Ho, j = t % Wo;
        long long h0 = i * sh - ph, w0 = j * sw - pw;
        const T* plane = x + nc * H * W;
        T sum = 0;
        for (long long h = max(h0, 0LL); h < min(h0 + kh, H); ++h)
            for (long long w = max(w0, 0LL); w < min(w0 + kw, W); ++w)
                sum += plane[h * W + w];
        y[t] = sum / (T)(kh * kw);                // padded zeros count in the divisor
    }
}

// Thread t is input pixel (nc, h, w): gx = sum of gy / (kh*kw) over the windows holding it.
extern "C" __global__ void avg_pool_adjoint(
    long long total, const T* gy, T* gx, long long H, long long W, long long Ho, long long Wo,
    long long kh, long long kw, long long sh, long long sw, long long ph, long long pw)
{
    FOR_EACH_THREAD(t, total) {
        long long nc = t / (H * W), h = (t / W) % H, w = t % W;
        long long i0, i1, j0, j1;
        windows_containing(h, kh, sh, ph, Ho, &i0, &i1);
        windows_containing(w, kw, sw, pw, Wo, &j0, &j1);
        const T* plane = gy + nc * Ho * Wo;
        T sum = 0;
        for (long long i = i0; i <= i1; ++i)
            for (long long j = j0; j <= j1; ++j)
                sum += plane[i * Wo + j] / (T)(kh * kw);
        gx[t] = sum;
    }
}

// Thread t is output (nc, i, j): the window's maximum and its flat index h*W + w in the plane.
// The first maximum in row-major order wins; a NaN wins and then stays (as NumPy's argmax).
extern "C" __global__ void max_pool(
    long long total, const T* x, T* y, long long* idx, long long H, long long W,
    long long Ho, long long Wo, long long kh, long long kw, long long sh, long long sw,
    long long ph, long long pw)
{
    FOR_EACH_THREAD(t, total) {
        long long nc = t / (Ho * Wo), i = (t / Wo) % Ho, j = t % Wo;
        long long h0 = i * sh - ph, w0 = j * sw - pw;
        const T* plane = x + nc * H * W;
        T best = MINUS_INFINITY;
        long long where = max(h0, 0LL) * W + max(w0, 0LL);  // an all -inf window: its first element
        for (long long h = max(h0, 0LL); h < min(h0 + kh, H); ++h)
            for (long long w = max(w0, 0LL); w < min(w0 + kw, W); ++w) {
                T v = plane[h * W + w];
                if (!(v <= best) && best == best) {   // v > best, or v is NaN; never after a NaN
                    best = v;
                    where = h * W + w;
                }
            }
        y[t] = best;
        idx[t] = where;
    }
}

// Thread t is output (nc, i, j): gx[nc].flat[idx[t]] += gy[t]. Overlapping windows (stride <
// kernel) may share an argmax, so the add is atomic (its order, hence the last bit, may vary).
extern "C" __global__ void max_pool_scatter(
    long long total, const T* gy, const long long* idx, T* gx, long long plane_in,
    long long plane_out)
{
    FOR_EACH_THREAD(t, total) {
        atomicAdd(&gx[(t / plane_out) * plane_in + idx[t]], gy[t]);
    }
}

// Thread t is output (nc, i, j): y = gx[nc].flat[idx[t]].
extern "C" __global__ void max_pool_gather(
    long long total, const T* gx, const long long* idx, T* y, long long plane_in,
    long long plane_out)
{
    FOR_EACH_THREAD(t, total) {
        y[t] = gx[(t / plane_out) * plane_in + idx[t]];
    }
}
"""


def _geometry(k, s, p) -> tuple[int, ...]:
    """The window arguments ``kh, kw, sh, sw, ph, pw`` shared by the pooling kernels."""
    return tuple(k) + tuple(s) + tuple(p)


def avg_pool2d(x, kernel_size: IntPair, stride: IntPair | None, padding: IntPair):
    """As :func:`tinyexit.backend.reference.pool.avg_pool2d`, for CuPy arrays."""
    check_nchw(x)
    k, s, p, out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:2] + out, dtype=x.dtype)
    args = (x, y) + tuple(x.shape[2:]) + out + _geometry(k, s, p)
    raw_launch.launch(SOURCE, "avg_pool", y.size, x.dtype, args)
    return y


def avg_pool2d_adjoint(
    gy, input_hw: tuple[int, int], kernel_size: IntPair, stride: IntPair | None, padding: IntPair
):
    """As :func:`tinyexit.backend.reference.pool.avg_pool2d_adjoint`, for CuPy arrays."""
    check_nchw(gy, "gy")
    k, s, p, out = pool_geometry(input_hw, kernel_size, stride, padding)
    check_pool_grad(gy, out)
    hw, xp = pair(input_hw, "input_hw"), array_module(gy)
    gy = xp.ascontiguousarray(gy)
    gx = xp.empty(gy.shape[:2] + hw, dtype=gy.dtype)
    args = (gy, gx) + hw + out + _geometry(k, s, p)
    raw_launch.launch(SOURCE, "avg_pool_adjoint", gx.size, gy.dtype, args)
    return gx


def max_pool2d(x, kernel_size: IntPair, stride: IntPair | None, padding: IntPair):
    """As :func:`tinyexit.backend.reference.pool.max_pool2d`, for CuPy arrays."""
    check_nchw(x)
    k, s, p, out = pool_geometry(x.shape[2:], kernel_size, stride, padding)
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:2] + out, dtype=x.dtype)
    idx = xp.empty(x.shape[:2] + out, dtype=xp.int64)
    args = (x, y, idx) + tuple(x.shape[2:]) + out + _geometry(k, s, p)
    raw_launch.launch(SOURCE, "max_pool", y.size, x.dtype, args)
    return y, idx


def max_pool2d_scatter(gy, idx, input_hw: tuple[int, int]):
    """As :func:`tinyexit.backend.reference.pool.max_pool2d_scatter`, for CuPy arrays."""
    check_nchw(gy, "gy")
    hw, xp = pair(input_hw, "input_hw"), array_module(gy)
    check_index(idx, gy.shape, hw[0] * hw[1])
    gy, idx = xp.ascontiguousarray(gy), xp.ascontiguousarray(idx, dtype=xp.int64)
    gx = xp.zeros(gy.shape[:2] + hw, dtype=gy.dtype)
    args = (gy, idx, gx, hw[0] * hw[1], idx.shape[2] * idx.shape[3])
    raw_launch.launch(SOURCE, "max_pool_scatter", gy.size, gy.dtype, args)
    return gx


def max_pool2d_gather(gx, idx):
    """As :func:`tinyexit.backend.reference.pool.max_pool2d_gather`, for CuPy arrays."""
    check_nchw(gx, "gx")
    check_index(idx, gx.shape[:2] + idx.shape[2:], gx.shape[2] * gx.shape[3])
    xp = array_module(gx)
    gx, idx = xp.ascontiguousarray(gx), xp.ascontiguousarray(idx, dtype=xp.int64)
    y = xp.empty(idx.shape, dtype=gx.dtype)
    args = (gx, idx, y, gx.shape[2] * gx.shape[3], idx.shape[2] * idx.shape[3])
    raw_launch.launch(SOURCE, "max_pool_gather", y.size, gx.dtype, args)
    return y
