"""Runtime node names traced back to the PyTorch module that made them, through the exporter's metadata.

`torch.onnx.export(dynamo=True)` stores each node's module path (`pkg.torch.onnx.name_scopes`). Runtimes
rename what they fuse or insert: ONNX Runtime names a fused Conv+Relu after the Relu's output plus
`_nchwc`, OpenVINO names a layer after an output tensor and its inserted reorders after the node they
feed (`x_abcd_acdb_node_conv2d/WithoutBiases`), TensorRT joins fused layers with ` + `. `LayerNames`
finds the longest ONNX node or output name inside a runtime name, and for a compute op fused under an
activation's name, walks back to the producer of the op's own family.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from backends.artifact_cache import remembered
from backends.profiling import OpTime

SCOPES = "pkg.torch.onnx.name_scopes"
_FAMILIES = {"conv": ("conv",), "gemm": ("gemm", "matmul", "fullyconnected", "innerproduct", "linear")}


def family(op: str) -> str | None:
    """The compute family of an op type (conv, gemm), or None."""
    low = op.lower()
    return next((f for f, words in _FAMILIES.items() if any(w in low for w in words)), None)


def layer_table(path: Path) -> dict:
    """Each node's module path, op type and producers, and each output's node (kept beside the file)."""
    return remembered(path, "module-layers", lambda: _read(path))


def _read(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    producer = {out: node.name for node in model.graph.node for out in node.output}
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    nodes = {}
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = ast.literal_eval(meta[SCOPES]) if SCOPES in meta else []
        shapes: list = []
        if node.op_type == "Conv" and len(node.input) > 1 and len(weights.get(node.input[1], [])) == 4:
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            weight = weights[node.input[1]]
            shapes = [[0, weight[1] * group], weight]  # (N, C) of the input, the weight: what says depthwise
        nodes[node.name] = [scopes[-2] if len(scopes) >= 2 else "", node.op_type,
                            [producer[i] for i in node.input if i in producer], shapes]
    return {"nodes": nodes, "outputs": producer}


class LayerNames:
    """Resolve a runtime's node name (and op type) to the ONNX node it came from: its module path, and for
    a convolution its input channels and weight shape (the module path of a convolution the exporter folded
    a batch norm into is the norm's)."""

    def __init__(self, table: dict) -> None:
        self.nodes, self.outputs = table["nodes"], table["outputs"]
        self._seen: dict[tuple[str, str], str | None] = {}

    def node(self, runtime_name: str) -> str | None:
        """The ONNX node whose name (or output's name) is the longest run of `_`-joined words in the name."""
        for piece in re.split(r" \+ |/|:", runtime_name):
            words = piece.split("_")
            for length in range(len(words), 0, -1):
                for start in range(len(words) - length + 1):
                    candidate = "_".join(words[start:start + length])
                    if candidate in self.nodes:
                        return candidate
                    if candidate in self.outputs:
                        return self.outputs[candidate]
        return None

    def op(self, runtime_name: str) -> str:
        """The ONNX op type of the node a runtime name came from ("" when none is found)."""
        found = self.node(runtime_name)
        return self.nodes[found][1] if found else ""

    def source(self, runtime_name: str, runtime_op: str = "") -> str | None:
        """The ONNX node a runtime op came from; for a compute op reported under another node's name (a Conv
        fused under its Relu's), the producer of the op's own family up to three steps back."""
        key = (runtime_name, runtime_op)
        if key not in self._seen:
            self._seen[key] = self._source(runtime_name, runtime_op)
        return self._seen[key]

    def _source(self, runtime_name: str, runtime_op: str) -> str | None:
        found = self.node(runtime_name)
        wanted = family(runtime_op)
        if found is None or not wanted or family(self.nodes[found][1]) == wanted:
            return found
        frontier = [found]
        for _ in range(3):
            frontier = [p for n in frontier for p in self.nodes[n][2]]
            match = next((n for n in frontier if family(self.nodes[n][1]) == wanted), None)
            if match:
                return match
        return found

    def layer(self, runtime_name: str, runtime_op: str = "") -> str:
        found = self.source(runtime_name, runtime_op)
        return self.nodes[found][0] if found else ""

    def shapes(self, runtime_name: str, runtime_op: str = "") -> tuple[tuple[int, ...], ...]:
        found = self.source(runtime_name, runtime_op)
        return tuple(tuple(s) for s in self.nodes[found][3]) if found else ()

    def op_time(self, name: str, op: str, ms: float, exec: str) -> OpTime:
        """A runtime's op as a profile row, named by the ONNX node it came from."""
        return OpTime(name=name, op=op, ms=ms, exec=exec, layer=self.layer(name, op), shapes=self.shapes(name, op))
