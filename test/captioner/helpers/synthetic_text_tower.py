"""A stand-in for CLIP's text tower with text.onnx's interface (docs/pack-format.md): input_ids (B, n) int64 ->
text_embeds (B, dim) float32. Each token adds a fixed random vector (a hash of its id), and padding (0) adds none,
so a row padded after its eot embeds as the row alone. For engine tests that must not wait for a trained tower.

usage: synthetic_text_tower.py OUT.onnx DIM [SEED]
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out, dim = sys.argv[1], int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
K = 997  # table rows: ids are taken modulo K
table = np.random.default_rng(seed).standard_normal((K, dim)).astype(np.float32)
nodes = [
    helper.make_node('Mod', ['input_ids', 'K'], ['slot']),  # (B, n)
    helper.make_node('Gather', ['table', 'slot'], ['vecs'], axis=0),  # (B, n, dim)
    helper.make_node('Greater', ['input_ids', 'zero'], ['real']),  # (B, n): not padding
    helper.make_node('Cast', ['real'], ['realf'], to=TensorProto.FLOAT),
    helper.make_node('Unsqueeze', ['realf', 'axis2'], ['mask']),  # (B, n, 1)
    helper.make_node('Mul', ['vecs', 'mask'], ['kept']),
    helper.make_node('ReduceSum', ['kept', 'axis1'], ['text_embeds'], keepdims=0),  # (B, dim)
]
graph = helper.make_graph(
    nodes,
    'synthetic_text_tower',
    [helper.make_tensor_value_info('input_ids', TensorProto.INT64, ['batch', 'n'])],
    [helper.make_tensor_value_info('text_embeds', TensorProto.FLOAT, ['batch', dim])],
    initializer=[
        numpy_helper.from_array(table, 'table'),
        numpy_helper.from_array(np.array(K, dtype=np.int64), 'K'),
        numpy_helper.from_array(np.array(0, dtype=np.int64), 'zero'),
        numpy_helper.from_array(np.array([2], dtype=np.int64), 'axis2'),
        numpy_helper.from_array(np.array([1], dtype=np.int64), 'axis1'),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
onnx.checker.check_model(model)
onnx.save(model, out)
