"""Read-only surgery on ONNX files: derived graphs with chosen outputs, and INT8 weight dequantisation.

Nothing here executes code from a file: ONNX is a protobuf of tensors and operator names, parsed by
the ``onnx`` package and run by onnxruntime's fixed operator set.
"""
from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path

import numpy as np


def file_sha256(path: Path, _memo: dict = {}) -> str:  # noqa: B006 - deliberate per-process memo
    """Hex SHA-256 of a file, memoised on (path, size, mtime) so a 90 MB model is hashed once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _memo:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _memo[key] = h.hexdigest()
    return _memo[key]


def _dynamic_batch(model) -> None:
    """Make dimension 0 of every graph input and output symbolic (``batch``)."""
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"


def derive_outputs(src: Path, outputs: list[str], cache: Path) -> Path:
    """A copy of ``src`` cut down to the nodes that compute ``outputs``, with a dynamic batch axis.

    Written once to ``cache/onnx/<src sha256[:16]>-<outputs hash>.onnx`` and reused afterwards.
    Used to expose a feature layer the file does not output (MobileNetV2's 1280-d pool, CLIP's
    pre-projection token) and to lift a fixed batch size of 1.
    """
    import onnx
    from onnx import utils

    tag = hashlib.sha256(("v2|" + "|".join(outputs)).encode()).hexdigest()[:8]
    dst = cache / "onnx" / f"{file_sha256(src)[:16]}-{tag}.onnx"
    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(src))
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    tmp = dst.with_suffix(".partial")
    extractor = utils.Extractor(onnx.shape_inference.infer_shapes(model))  # value_info for inner tensors
    sub = extractor.extract_model(inputs, outputs)
    for vi in sub.graph.output:  # extracted outputs carry the source's fixed shapes; clear them
        vi.type.tensor_type.ClearField("shape")
    del sub.graph.value_info[:]  # inferred inner shapes assume the source's batch size
    _dynamic_batch(sub)
    onnx.save(sub, str(tmp))
    tmp.replace(dst)
    return dst


def clip_pooled_output_name(src: Path) -> str:
    """Name of the tensor that feeds CLIP's visual projection: the post-LayerNorm class token (B, width)."""
    import onnx

    graph = onnx.load(str(src), load_external_data=False).graph
    producer = {o: n for n in graph.node for o in n.output}
    final = producer[graph.output[0].name]
    # breadth-first walk back from image_embeds to the nearest matmul (the projection), then to its input
    queue, seen = deque([final]), set()
    while queue:
        node = queue.popleft()
        if node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in ("MatMulInteger", "MatMul"):
            act = node.input[0]
            quant = producer.get(act)
            return quant.input[0] if quant is not None and quant.op_type == "DynamicQuantizeLinear" else act
        queue.extend(producer[i] for i in node.input if i in producer)
    raise ValueError(f"{src}: no projection MatMul found before {graph.output[0].name}")


def dequantized_linear_weights(src: Path) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, str | None]]]:
    """Float weights of an INT8 (MatMulInteger) ONNX transformer, in graph order.

    Returns ``(named, linears)``: ``named`` maps each float initializer's name (biases, norms,
    embeddings) to its array; ``linears`` lists every quantised matmul as ``(W, bias_name)`` with
    ``W = (q - zero_point) * scale`` of shape ``(in, out)`` and the name of the bias added to its
    output (``None`` for a bias-free projection).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(src)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def bias_after(node, depth=6):
        frontier = list(node.output)
        for _ in range(depth):
            nxt = []
            for t in frontier:
                for c in consumers.get(t, []):
                    names = [i for i in c.input if i in init and i.endswith(".bias")]
                    if c.op_type == "Add" and names:
                        return names[0]
                    nxt += list(c.output)
            frontier = nxt
        return None

    linears = []
    for n in graph.node:
        if n.op_type != "MatMulInteger":
            continue
        q = init[n.input[1]].astype(np.float32)
        zp = init[n.input[3]].astype(np.float32) if len(n.input) > 3 and n.input[3] in init else 0.0
        scale_name = n.input[1].replace("_quantized", "_scale")
        w = (q - zp) * init[scale_name].astype(np.float32)
        linears.append((w, bias_after(n)))
    named = {k: v.astype(np.float32) for k, v in init.items() if v.dtype == np.float32 and "." in k}
    return named, linears
