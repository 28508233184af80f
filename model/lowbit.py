"""
Weight-only low-bit packs: every MatMul or Gemm with a constant 2-D float weight becomes onnxruntime's contrib op
`com.microsoft.MatMulNBits` (onnxruntime docs/ContribOperators.md): weights quantised to `bits` (4 or 8) in blocks of
`block_size` along K, each block with a float scale and a uint8 zero point (asymmetric), activations left in float
and, with accuracy_level 4, quantised to int8 per block inside the kernel where the CPU has such a kernel.

GPT-2's tied token table (embedding Gather + LM head Gemm with transB) is quantised ONCE, in MatMulNBits's own
layout: B [V, k_blocks, blob] has one row per token, so the LM head is a MatMulNBits over it, and the embedding
gathers the same rows (and their scales and zero points) and dequantises them with plain ONNX ops (opset 17 has no
bitwise And/shift on uint8, so 4-bit nibbles are split with integer Div and Sub). onnxruntime has a
GatherBlockQuantized contrib op for this, but its layout and bit widths have changed between releases, and the
lookup is one token per step, so plain ops cost nothing measurable and run on any build.

Written by hand because onnxruntime's Python quantiser (matmul_4bits_quantizer) is not installable here (no Python
onnxruntime on this platform), and the repo's export keeps every graph rewrite in its own code (model/export.py).

    /usr/bin/python3 -m model.lowbit IN.onnx OUT.onnx --bits 4 --block 32
"""

import argparse
import shutil
from typing import List, Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .export import ExportError, _count_uses, _tied_table, _weight_operand

MS_DOMAIN = "com.microsoft"
ACCURACY_INT8 = 4  # accuracy_level 4: A may be quantised to int8 per block inside the kernel


def quantize_blocks(w: np.ndarray, bits: int, block: int):
    """w [K, N] float -> (B uint8 [N, k_blocks, blob], scales float32 [N, k_blocks], zero points uint8 packed
    [N, ceil(k_blocks * bits / 8)]) with w[k, n] ~= (q - zp) * scale for k in its block. Asymmetric per block; the
    range always includes 0, so a zero weight stays exactly zero. K is padded with zeros to whole blocks."""
    _check(bits, block)
    K, N = w.shape
    kb = -(-K // block)
    wt = np.zeros((N, kb * block), np.float32)
    wt[:, :K] = w.T
    wt = wt.reshape(N, kb, block)  # (N, kb, block)
    qmax = (1 << bits) - 1
    lo = np.minimum(wt.min(axis=2), 0.0)
    hi = np.maximum(wt.max(axis=2), 0.0)
    scale = ((hi - lo) / qmax).astype(np.float32)
    scale = np.where(scale == 0, np.float32(1.0), scale).astype(np.float32)
    zp = np.clip(np.round(-lo / scale), 0, qmax).astype(np.uint8)  # (N, kb)
    q = np.clip(np.round(wt / scale[:, :, None]) + zp[:, :, None], 0, qmax).astype(np.uint8)  # (N, kb, block)
    return _pack(q, bits), scale, _pack(zp, bits)


def _check(bits: int, block: int):
    if bits not in (4, 8):
        raise ExportError(f"MatMulNBits bits must be 4 or 8, got {bits}")
    if block < 16 or block & (block - 1):
        raise ExportError(f"MatMulNBits block size must be a power of two of at least 16, got {block}")


def _pack(q: np.ndarray, bits: int) -> np.ndarray:
    """uint8 values < 2**bits along the last axis -> bytes: for 4 bits, element 2i in the low nibble and 2i+1 in the
    high nibble of byte i (an odd count is padded with 0), as MatMulNBits reads B and its zero points."""
    if bits == 8:
        return np.ascontiguousarray(q)
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.zeros(q.shape[:-1] + (1,), np.uint8)], axis=-1)
    return np.ascontiguousarray(q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def dequantize_blocks(b: np.ndarray, scales: np.ndarray, zp: np.ndarray, bits: int, block: int, K: int) -> np.ndarray:
    """The inverse of quantize_blocks (its float weight [K, N]), for tests."""
    N, kb = scales.shape
    q = _unpack(b, bits).reshape(N, kb, block).astype(np.float32)
    z = _unpack(zp, bits)[:, :kb].astype(np.float32)
    return ((q - z[:, :, None]) * scales[:, :, None]).reshape(N, kb * block)[:, :K].T


def _unpack(p: np.ndarray, bits: int) -> np.ndarray:
    if bits == 8:
        return p
    return np.stack([p & 15, p >> 4], axis=-1).reshape(p.shape[:-1] + (p.shape[-1] * 2,))


def _nbits_node(base: str, a: str, b: str, out: str, K: int, N: int, bits: int, block: int,
                bias: Optional[str], accuracy: int = ACCURACY_INT8) -> List[onnx.NodeProto]:
    mm_out = f"{base}_nb" if bias else out
    nodes = [helper.make_node("MatMulNBits", [a, b + "_B", b + "_scales", b + "_zp"], [mm_out], name=f"{base}_nbits",
                              domain=MS_DOMAIN, K=K, N=N, bits=bits, block_size=block, accuracy_level=accuracy)]
    if bias:
        nodes.append(helper.make_node("Add", [mm_out, bias], [out], name=f"{base}_bias"))
    return nodes


def _store(g, name: str, w: np.ndarray, bits: int, block: int):
    b, s, z = quantize_blocks(w, bits, block)
    g.initializer.extend([numpy_helper.from_array(b, name + "_B"), numpy_helper.from_array(s, name + "_scales"),
                          numpy_helper.from_array(z, name + "_zp")])


def _const(g, name: str, arr: np.ndarray) -> str:
    g.initializer.append(numpy_helper.from_array(arr, name))
    return name


def _nibbles(g, x: str, o: str, width: int) -> List[onnx.NodeProto]:
    """uint8 (b, n, rows, width / 2) -> int32 (b, n, rows, width): low nibble then high nibble of each byte
    (Div/Sub: no bitwise ops in opset 17). The width is explicit, not -1: the prefill gathers zero ids, and a -1
    cannot be inferred from an empty tensor."""
    sixteen = _const(g, o + "_16", np.array(16, np.int32))
    last = _const(g, o + "_last", np.array([-1], np.int64))
    flat = _const(g, o + "_flat", np.array([0, 0, 0, width], np.int64))  # b, n, rows copied
    return [
        helper.make_node("Cast", [x], [o + "_i"], to=TensorProto.INT32, name=o + "_cast_i"),
        helper.make_node("Div", [o + "_i", sixteen], [o + "_hi"], name=o + "_div"),
        helper.make_node("Mul", [o + "_hi", sixteen], [o + "_hi16"], name=o + "_mul16"),
        helper.make_node("Sub", [o + "_i", o + "_hi16"], [o + "_lo"], name=o + "_sub"),
        helper.make_node("Unsqueeze", [o + "_lo", last], [o + "_lo1"], name=o + "_unsq_lo"),
        helper.make_node("Unsqueeze", [o + "_hi", last], [o + "_hi1"], name=o + "_unsq_hi"),
        helper.make_node("Concat", [o + "_lo1", o + "_hi1"], [o + "_pairs"], axis=-1, name=o + "_concat"),
        helper.make_node("Reshape", [o + "_pairs", flat], [o], name=o + "_reshape"),
    ]


def _gather_rows_nodes(g, name: str, ids: str, out: str, E: int, bits: int, block: int) -> List[onnx.NodeProto]:
    """The embedding over the quantised tied table: gather each id's row of B, scales and zero points
    ([b, n, kb, blob], [b, n, kb], [b, n, zp bytes]) and dequantise to [b, n, E]. Assumes ids of rank 2, as the
    decoder's input_ids are."""
    kb = -(-E // block)
    o = out
    nodes = [helper.make_node("Gather", [name + "_B", ids], [o + "_qb"], axis=0, name=o + "_gB"),
             helper.make_node("Gather", [name + "_scales", ids], [o + "_s"], axis=0, name=o + "_gs"),
             helper.make_node("Gather", [name + "_zp", ids], [o + "_zb"], axis=0, name=o + "_gz")]
    if bits == 4:
        # B: (b, n, kb, blob) -> (b, n, kb, block); zero points: (b, n, zbytes) -> (b, n, 2*zbytes) -> first kb
        nodes += [helper.make_node("Unsqueeze", [o + "_zb", _const(g, o + "_z_ax", np.array([-2], np.int64))],
                                   [o + "_zb1"], name=o + "_zunsq")]
        nodes += _nibbles(g, o + "_qb", o + "_q", block)
        nodes += _nibbles(g, o + "_zb1", o + "_z2", 2 * (-(-kb // 2)))
        nodes += [helper.make_node("Squeeze", [o + "_z2", _const(g, o + "_z_sq", np.array([-2], np.int64))],
                                   [o + "_zall"], name=o + "_zsq")]
    else:
        nodes += [helper.make_node("Cast", [o + "_qb"], [o + "_q"], to=TensorProto.INT32, name=o + "_cast_q"),
                  helper.make_node("Cast", [o + "_zb"], [o + "_zall"], to=TensorProto.INT32, name=o + "_cast_z")]
    starts = _const(g, o + "_z_start", np.array([0], np.int64))
    ends = _const(g, o + "_z_end", np.array([kb], np.int64))
    last = _const(g, o + "_z_axis", np.array([-1], np.int64))
    shape = _const(g, o + "_shape", np.array([0, 0, kb * block], np.int64))
    nodes += [
        helper.make_node("Slice", [o + "_zall", starts, ends, last], [o + "_z"], name=o + "_zslice"),
        helper.make_node("Unsqueeze", [o + "_z", last], [o + "_z1"], name=o + "_zunsq1"),
        helper.make_node("Sub", [o + "_q", o + "_z1"], [o + "_qz"], name=o + "_subz"),
        helper.make_node("Cast", [o + "_qz"], [o + "_qf"], to=TensorProto.FLOAT, name=o + "_cast_f"),
        helper.make_node("Unsqueeze", [o + "_s", last], [o + "_s1"], name=o + "_sunsq"),
        helper.make_node("Mul", [o + "_qf", o + "_s1"], [o + "_blocks"], name=o + "_scale"),
        helper.make_node("Reshape", [o + "_blocks", shape], [o + ("_padded" if kb * block != E else "")],
                         name=o + "_rows"),
    ]
    if kb * block != E:
        nodes.append(helper.make_node("Slice", [o + "_padded", starts,
                                                _const(g, o + "_e_end", np.array([E], np.int64)), last], [o],
                                      name=o + "_eslice"))
    return nodes


def to_nbits(path: str, bits: int = 4, block: int = 32, min_elements: int = 4096, out: Optional[str] = None,
             accuracy: int = ACCURACY_INT8):
    """Rewrite the graph at `path` (into `out`, default in place): each MatMul/Gemm whose right operand is a 2-D
    float initialiser of at least min_elements, read by that node alone, becomes MatMulNBits (+ Add for a Gemm's
    bias); GPT-2's tied token table becomes one quantised table read by the LM head's MatMulNBits and by the
    embedding's gather-and-dequantise. Everything else (LayerNorm, biases, the position table, convolutions) stays
    fp32. Only the top-level graph is rewritten (our graphs have no subgraphs). accuracy: MatMulNBits's
    accuracy_level (4: int8 activations inside the kernel where the build has such a kernel; 0: float)."""
    _check(bits, block)
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    uses = _count_uses(g)
    tied = _tied_table(g, inits, uses)
    if tied and inits[tied[0]].dims[1] % 2:
        tied = None  # an odd width cannot be split into nibble pairs; leave it fp32
    drop, new_nodes = set(), []
    for n in g.node:
        if tied and n is tied[1]:
            name = tied[0]
            V, E = inits[name].dims
            _store(g, name, numpy_helper.to_array(inits[name]).T, bits, block)  # [E, V]: a row of B per token
            drop.add(name)
            new_nodes += _gather_rows_nodes(g, name, n.input[1], n.output[0], E, bits, block)
            continue
        if tied and n is tied[2]:
            name = tied[0]
            V, E = inits[name].dims
            bias = n.input[2] if len(n.input) > 2 and n.input[2] else None
            new_nodes += _nbits_node(n.name or name + "_head", n.input[0], name, n.output[0], E, V, bits, block, bias,
                                     accuracy)
            continue
        found = _weight_operand(n, inits)
        if found is None or uses.get(found[1]) != 1 or found[0].size < min_elements or found[0].shape[0] < 16:
            new_nodes.append(n)
            continue
        arr, wname, bias = found
        K, N = arr.shape
        _store(g, wname, arr, bits, block)
        drop.add(wname)
        new_nodes += _nbits_node(n.name or wname, n.input[0], wname, n.output[0], K, N, bits, block, bias, accuracy)
    keep = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(new_nodes)
    if not any(o.domain == MS_DOMAIN for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    onnx.save(m, out or path)


def fp16_storage_to_fp32(path: str, out: str):
    """Undo export.to_fp16_storage: fold each `Cast(float16 initialiser) -> float32` into a float32 initialiser.
    For benchmarks built from a stored fp16 pack (packs/random-full): its weights, widened, are the fp32 reference."""
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    folded, nodes = {}, []
    for n in g.node:
        src = inits.get(n.input[0]) if n.op_type == "Cast" and n.input else None
        if src is not None and src.data_type == TensorProto.FLOAT16:
            folded[src.name] = numpy_helper.from_array(numpy_helper.to_array(src).astype(np.float32), n.output[0])
            continue
        nodes.append(n)
    keep = [folded.get(i.name, i) for i in g.initializer]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(m, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--bits", type=int, default=4, choices=(4, 8))
    ap.add_argument("--block", type=int, default=32)
    a = ap.parse_args()
    shutil.copyfile(a.src, a.out)
    to_nbits(a.out, a.bits, a.block)


if __name__ == "__main__":
    main()
