"""Read-only surgery on ONNX files: derived graphs with chosen outputs, and INT8 weight dequantisation.

Nothing here executes code from a file: ONNX is a protobuf of tensors and operator names, parsed by
the ``onnx`` package and run by onnxruntime's fixed operator set.
"""
from __future__ import annotations

import hashlib
import re
from collections import deque
from pathlib import Path

import numpy as np

from provguard.hashing import cached_file_sha256


def _dynamic_batch(model) -> None:
    """Make dimension 0 of every graph input and output symbolic (``batch``)."""
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"


def has_dynamic_quantization(src: Path) -> bool:
    """Whether the graph quantises activations at run time (``DynamicQuantizeLinear``: one scale per tensor)."""
    import onnx

    return any(n.op_type == "DynamicQuantizeLinear" for n in onnx.load(str(src), load_external_data=False).graph.node)


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


POOLINGS = ("cls", "patch_mean")


def derive_token_features(src: Path, features: dict[str, tuple[str, str | None]], cache: Path) -> Path:
    """A copy of ``src`` whose outputs are the named ``features``, computed in the same forward pass.

    ``features`` maps an output name to ``(tensor, pooling)``: ``pooling`` ``None`` passes a ``(B, D)``
    tensor through; ``"cls"`` takes token 0 of a ``(B, T, D)`` hidden state; ``"patch_mean"`` averages
    tokens ``1..T-1``. The pooling nodes are added inside the graph, so a block's ``(B, 197, 768)``
    hidden state never leaves onnxruntime: twelve extra class tokens cost 12 x 768 floats per image.
    Written once to ``cache/onnx/<src sha256[:16]>-<features hash>.onnx`` and reused. Also used to
    expose a layer the file does not output (MobileNetV2's 1280-d pool) and to lift a fixed batch of 1.
    """
    import onnx
    from onnx import helper, numpy_helper, utils

    spec = "|".join(f"{k}={t}:{p}" for k, (t, p) in sorted(features.items()))
    tag = hashlib.sha256(("tok1|" + spec).encode()).hexdigest()[:8]
    dst = cache / "onnx" / f"{cached_file_sha256(src)[:16]}-{tag}.onnx"
    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(src))
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    tensors = sorted({t for t, _ in features.values()})
    sub = utils.Extractor(onnx.shape_inference.infer_shapes(model)).extract_model(inputs, tensors)
    del sub.graph.output[:]
    del sub.graph.value_info[:]
    g = sub.graph
    pools = {p for _, p in features.values()}
    constants = {"pg_tok0": (0, "cls"), "pg_from1": ([1], "patch_mean"), "pg_toend": ([1 << 30], "patch_mean"),
                 "pg_axis1": ([1], "patch_mean")}  # only the ones a pooling uses (onnxruntime warns otherwise)
    g.initializer.extend([numpy_helper.from_array(np.array(v, np.int64), k) for k, (v, p) in constants.items() if p in pools])
    for name, (tensor, pooling) in sorted(features.items()):
        if pooling is None:
            g.node.append(helper.make_node("Identity", [tensor], [name], name=f"pg/{name}"))
        elif pooling == "cls":
            g.node.append(helper.make_node("Gather", [tensor, "pg_tok0"], [name], axis=1, name=f"pg/{name}"))
        elif pooling == "patch_mean":
            g.node.append(helper.make_node("Slice", [tensor, "pg_from1", "pg_toend", "pg_axis1"], [f"pg/{name}/patches"],
                                           name=f"pg/{name}/slice"))
            g.node.append(helper.make_node("ReduceMean", [f"pg/{name}/patches"], [name], axes=[1], keepdims=0,
                                           name=f"pg/{name}"))  # attribute form: opsets up to 17
        else:
            raise ValueError(f"unknown pooling {pooling!r} (choose from {POOLINGS})")
        g.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    _dynamic_batch(sub)
    tmp = dst.with_suffix(".partial")
    onnx.save(sub, str(tmp))
    tmp.replace(dst)
    return dst


def clip_block_outputs(src: Path) -> list[str]:
    """Names of the residual-stream tensors after each transformer block, ``(B, T, width)``, in order.

    HF-exported CLIP graphs name them ``/vision_model/encoder/layers.{i}/Add_1_output_0``; the last
    one is often renamed (it is also the ``last_hidden_state`` output), so the list is built by
    following the residual chain: block ``i``'s second ``Add`` consumes block ``i-1``'s output.
    """
    import onnx

    graph = onnx.load(str(src), load_external_data=False).graph
    pattern = re.compile(r"/encoder/layers\.(\d+)/Add_1$")
    blocks = {int(m.group(1)): n.output[0] for n in graph.node if (m := pattern.search(n.name))}
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise ValueError(f"{src}: no CLIP encoder blocks named like '/encoder/layers.N/Add_1' found")
    return [blocks[i] for i in range(len(blocks))]
