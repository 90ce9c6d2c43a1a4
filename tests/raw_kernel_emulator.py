"""NumPy emulators of the CUDA C kernels in ``tinyexit/backend/gpu/raw_*.py``.

Each emulator takes the kernel's arguments (``total`` first, then the arrays and sizes in the
kernel's order) and runs the kernel body for every thread id ``t`` at once, with the same
integer arithmetic written line by line after the CUDA C (``//`` is C's ``/`` on the
non-negative values used; a loop over the window becomes a Python loop with a mask of the
threads still inside). Installed in place of ``raw_launch.launch``, they let the host code of
the raw modules and the index maths of their kernels run against the NumPy reference on a
machine without a GPU. What they cannot check: C syntax, types and the compiler.
"""

from __future__ import annotations

import numpy as np


def im2col(total, x, cols, N, C, H, W, kh, kw, Ho, Wo, sh, sw, ph, pw):
    t = np.arange(total)
    row, col = t // (N * Ho * Wo), t % (N * Ho * Wo)
    c, p, q = row // (kh * kw), (row // kw) % kh, row % kw
    n, i, j = col // (Ho * Wo), (col // Wo) % Ho, col % Wo
    h, w = i * sh - ph + p, j * sw - pw + q
    inside = (0 <= h) & (h < H) & (0 <= w) & (w < W)
    src = ((n * C + c) * H + np.clip(h, 0, H - 1)) * W + np.clip(w, 0, W - 1)
    cols.reshape(-1)[t] = np.where(inside, x.reshape(-1)[src], 0)


def col2im(total, dcols, gx, N, C, H, W, kh, kw, Ho, Wo, sh, sw, ph, pw):
    t = np.arange(total)
    n, c = t // (C * H * W), (t // (H * W)) % C
    h, w = (t // W) % H, t % W
    total_sum = np.zeros(total, dtype=gx.dtype)
    for p in range(kh):
        hi = h + ph - p
        ok_h = (hi >= 0) & (hi % sh == 0) & (hi // sh < Ho)
        i = hi // sh
        for q in range(kw):
            wj = w + pw - q
            ok = ok_h & (wj >= 0) & (wj % sw == 0) & (wj // sw < Wo)
            j = wj // sw
            row, col = (c * kh + p) * kw + q, (n * Ho + i) * Wo + j
            src = np.where(ok, row * (N * Ho * Wo) + col, 0)
            total_sum += np.where(ok, dcols.reshape(-1)[src], 0)
    gx.reshape(-1)[t] = total_sum


def _windows_containing(h, k, s, pad, n_out):
    lowest = h + pad - k + 1
    first = np.where(lowest <= 0, 0, (lowest + s - 1) // np.maximum(s, 1))
    last = np.minimum((h + pad) // s, n_out - 1)
    return first, last


def _window_loop(x, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, total):
    """Yield ``(t, inside, flat_index_in_plane, value)`` over the window in row-major order."""
    t = np.arange(total)
    nc, i, j = t // (Ho * Wo), (t // Wo) % Ho, t % Wo
    h0, w0 = i * sh - ph, j * sw - pw
    for a in range(kh):
        for b in range(kw):
            h, w = np.maximum(h0, 0) + a, np.maximum(w0, 0) + b
            inside = (h < np.minimum(h0 + kh, H)) & (w < np.minimum(w0 + kw, W))
            where = np.where(inside, h * W + w, 0)
            yield t, inside, where, x.reshape(-1)[nc * H * W + where]


def avg_pool(total, x, y, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    acc = np.zeros(total, dtype=y.dtype)
    for _t, inside, _, v in _window_loop(x, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, total):
        acc += np.where(inside, v, 0)
    y.reshape(-1)[:] = acc / y.dtype.type(kh * kw)


def avg_pool_adjoint(total, gy, gx, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    t = np.arange(total)
    nc, h, w = t // (H * W), (t // W) % H, t % W
    i0, i1 = _windows_containing(h, kh, sh, ph, Ho)
    j0, j1 = _windows_containing(w, kw, sw, pw, Wo)
    acc = np.zeros(total, dtype=gx.dtype)
    for di in range(kh):  # at most kh windows hold a row
        for dj in range(kw):
            i, j = i0 + di, j0 + dj
            ok = (i <= i1) & (j <= j1)
            src = np.where(ok, nc * Ho * Wo + i * Wo + j, 0)
            acc += np.where(ok, gy.reshape(-1)[src] / gx.dtype.type(kh * kw), 0)
    gx.reshape(-1)[:] = acc


def max_pool(total, x, y, idx, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    t = np.arange(total)
    i, j = (t // Wo) % Ho, t % Wo
    h0, w0 = i * sh - ph, j * sw - pw
    best = np.full(total, -np.inf, dtype=y.dtype)
    where = np.maximum(h0, 0) * W + np.maximum(w0, 0)
    for _, inside, flat, v in _window_loop(x, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, total):
        with np.errstate(invalid="ignore"):
            better = inside & ~(v <= best) & (best == best)
        best = np.where(better, v, best)
        where = np.where(better, flat, where)
    y.reshape(-1)[:] = best
    idx.reshape(-1)[:] = where


def max_pool_scatter(total, gy, idx, gx, plane_in, plane_out):
    t = np.arange(total)
    np.add.at(gx.reshape(-1), (t // plane_out) * plane_in + idx.reshape(-1)[t], gy.reshape(-1)[t])


def max_pool_gather(total, gx, idx, y, plane_in, plane_out):
    t = np.arange(total)
    y.reshape(-1)[t] = gx.reshape(-1)[(t // plane_out) * plane_in + idx.reshape(-1)[t]]


def _tap_weight(k, k_in, i0, i1, lam):
    one = lam.dtype.type(1)
    return np.where(i0[k] == k_in, one - lam[k], 0) + np.where(i1[k] == k_in, lam[k], 0)


def resize(total, x, y, H, W, Ho, Wo, h0, h1, lh, w0, w1, lw):
    t = np.arange(total)
    nc, i, j = t // (Ho * Wo), (t // Wo) % Ho, t % Wo
    flat = x.reshape(-1)
    top, bottom = (nc * H + h0[i]) * W, (nc * H + h1[i]) * W
    one = lh.dtype.type(1)
    y.reshape(-1)[t] = (one - lh[i]) * ((one - lw[j]) * flat[top + w0[j]] + lw[j] * flat[top + w1[j]]) + lh[
        i
    ] * ((one - lw[j]) * flat[bottom + w0[j]] + lw[j] * flat[bottom + w1[j]])


def resize_adjoint(total, gy, gx, H, W, Ho, Wo, h0, h1, lh, h_first, h_stop, w0, w1, lw, w_first, w_stop):
    t = np.arange(total)
    nc, h, w = t // (H * W), (t // W) % H, t % W
    acc = np.zeros(total, dtype=gx.dtype)
    for di in range(int((h_stop - h_first).max())):
        i = h_first[h] + di
        ok_i = i < h_stop[h]
        i = np.where(ok_i, i, 0)
        weight_h = _tap_weight(i, h, h0, h1, lh)
        for dj in range(int((w_stop - w_first).max())):
            j = w_first[w] + dj
            ok = ok_i & (j < w_stop[w])
            j = np.where(ok, j, 0)
            term = gy.reshape(-1)[nc * Ho * Wo + i * Wo + j] * weight_h * _tap_weight(j, w, w0, w1, lw)
            acc += np.where(ok, term, 0)
    gx.reshape(-1)[:] = acc


def launch(source: str, name: str, total: int, dtype, args: tuple) -> None:
    """Drop-in for ``raw_launch.launch``: run the emulator of kernel ``name``."""
    for a in args:
        if isinstance(a, np.ndarray):
            assert a.flags.c_contiguous, f"{name}: arrays reach a kernel C-contiguous"
            assert a.dtype in (np.dtype(dtype), np.dtype(np.int64)), f"{name}: dtype {a.dtype}"
        else:
            assert isinstance(a, (int, np.integer)), f"{name}: scalar {a!r} is not an int"
    assert f"void {name}(" in source, f"no kernel {name} in the source"
    if total:
        globals()[name](total, *args)
