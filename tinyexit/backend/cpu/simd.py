"""Vector values for Numba kernels: a register of float32 or float64 lanes, loaded, stored and
updated with a fused multiply-add, as compiler intrinsics.

LLVM vectorises a loop along one array axis by itself, but it will not keep a tile of a matrix
product's output in vector registers across the reduction: written with scalar sums, the sums of
an ``MR x NR`` tile stay scalar. :func:`.products._tile_product` therefore spells its tile out
in these vectors, one per ``lanes`` output columns, and LLVM maps each to one register.

The register width follows the CPU Numba compiles for: 64 bytes with AVX-512 (16 float32), 32
with AVX2 (8), else 16. A tile of 12 vectors then fits in the register file of each.
"""

from __future__ import annotations

import llvmlite.binding as llvm_binding
import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model


def _register_bytes() -> int:
    """The vector register width Numba's code for this CPU has, in bytes: the host's, or with
    ``NUMBA_CPU_NAME`` set (a portable target), what ``NUMBA_CPU_FEATURES`` names, else 16."""
    if numba.config.CPU_NAME:
        features = {f[1:]: f[0] == "+" for f in (numba.config.CPU_FEATURES or "").split(",") if f}
    else:
        features = llvm_binding.get_host_cpu_features()
    return 64 if features.get("avx512f") else 32 if features.get("avx2") else 16


REGISTER_BYTES = _register_bytes()


def register_lanes(bits: int) -> int:
    """How many values of ``bits`` bits one register holds (16 float32 with AVX-512)."""
    return REGISTER_BYTES * 8 // bits


class Vector(types.Type):
    """The Numba type of a register of ``dtype`` lanes (``REGISTER_BYTES`` wide)."""

    def __init__(self, dtype: types.Float):
        self.dtype, self.lanes = dtype, register_lanes(dtype.bitwidth)
        super().__init__(name=f"vector{self.lanes}x{dtype}")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(
            dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.lanes)
        )


def _element_pointer(context, builder, array_type, array, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])


@intrinsic
def lanes(typingctx, array):
    """The number of ``array.dtype`` values in one register (a compile-time constant)."""
    count = register_lanes(array.dtype.bitwidth)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, count)

    return types.intp(array), codegen


@intrinsic
def load(typingctx, array, index):
    """The register of values ``array[index : index + lanes]`` of a 1-D contiguous array."""
    vector = Vector(array.dtype)

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], *args)
        value_type = context.get_value_type(vector)
        return builder.load(
            builder.bitcast(pointer, value_type.as_pointer()), align=array.dtype.bitwidth // 8
        )

    return vector(array, index), codegen


@intrinsic
def store(typingctx, array, index, value):
    """``array[index : index + lanes] = value`` for a 1-D contiguous array."""

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        target = builder.bitcast(pointer, args[2].type.as_pointer())
        builder.store(args[2], target, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


@intrinsic
def zeros(typingctx, array):
    """A register of zeros of ``array.dtype``."""
    vector = Vector(array.dtype)

    def codegen(context, builder, signature, args):
        value_type = context.get_value_type(vector)
        return ir.Constant(value_type, [0.0] * vector.lanes)

    return vector(array), codegen


@intrinsic
def fma(typingctx, acc, scalar, value):
    """``acc + scalar * value`` in every lane, one rounding (``scalar`` broadcast to all lanes)."""

    def codegen(context, builder, signature, args):
        acc_value, scalar_value, vector_value = args
        vector_type = acc_value.type
        scalar_value = context.cast(builder, scalar_value, signature.args[1], signature.args[0].dtype)
        lane0 = builder.insert_element(
            ir.Constant(vector_type, ir.Undefined), scalar_value, ir.Constant(ir.IntType(32), 0)
        )
        splat = builder.shuffle_vector(
            lane0,
            ir.Constant(vector_type, ir.Undefined),
            ir.Constant(ir.VectorType(ir.IntType(32), vector_type.count), [0] * vector_type.count),
        )
        suffix = f"v{vector_type.count}f{32 if vector_type.element == ir.FloatType() else 64}"
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector_type, [vector_type] * 3), f"llvm.fma.{suffix}"
        )
        return builder.call(function, [splat, vector_value, acc_value])

    return acc(acc, scalar, value), codegen


TRANSPOSE_BLOCK = 8
"""Rows and columns of the blocks that :func:`transpose_block` moves."""


@intrinsic
def transpose_block(typingctx, src, rows, i, j, dst):
    """``dst[j + u, i + v] = src[rows[i + v], j + u]`` for ``u, v < 8``: an 8x8 block of a
    transpose, as 8 vector loads, shuffles and 8 vector stores (a scalar loop moves one value per
    cycle, this two to three). ``src`` and ``dst`` are 2-D with contiguous rows (any row stride),
    ``rows`` a 1-D array of row indices of ``src``; nothing is bounds-checked."""
    block = TRANSPOSE_BLOCK

    def codegen(context, builder, signature, args):
        src_type, rows_type, _, _, dst_type = signature.args
        src_value, rows_value, i_value, j_value, dst_value = args
        src_array = context.make_array(src_type)(context, builder, src_value)
        rows_array = context.make_array(rows_type)(context, builder, rows_value)
        dst_array = context.make_array(dst_type)(context, builder, dst_value)
        row_type = ir.VectorType(context.get_value_type(src_type.dtype), block)
        index = ir.IntType(32)

        def offset(value, v):
            return builder.add(value, ir.Constant(value.type, v))

        def row_pointer(array_type, array, r, c):
            pointer = cgutils.get_item_pointer(context, builder, array_type, array, [r, c])
            return builder.bitcast(pointer, row_type.as_pointer())

        loaded = []
        for v in range(block):
            r = builder.load(
                cgutils.get_item_pointer(context, builder, rows_type, rows_array, [offset(i_value, v)])
            )
            loaded.append(builder.load(row_pointer(src_type, src_array, r, j_value), align=1))
        while len(loaded) > 1:  # concatenate into one vector of block * block values, row after row
            width = 2 * loaded[0].type.count
            mask = ir.Constant(ir.VectorType(index, width), list(range(width)))
            loaded = [builder.shuffle_vector(a, b, mask) for a, b in zip(loaded[::2], loaded[1::2])]
        whole = loaded[0]
        undefined = ir.Constant(whole.type, ir.Undefined)
        order = [v * block + u for u in range(block) for v in range(block)]  # column u of row v
        swapped = builder.shuffle_vector(
            whole, undefined, ir.Constant(ir.VectorType(index, block * block), order)
        )
        for u in range(block):
            part = ir.Constant(ir.VectorType(index, block), list(range(u * block, (u + 1) * block)))
            out = builder.shuffle_vector(swapped, undefined, part)
            builder.store(out, row_pointer(dst_type, dst_array, offset(j_value, u), i_value), align=1)
        return context.get_dummy_value()

    return types.void(src, rows, i, j, dst), codegen
