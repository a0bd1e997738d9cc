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

SCOPES = "pkg.torch.onnx.name_scopes"
_FAMILIES = {"conv": ("conv",), "gemm": ("gemm", "matmul", "fullyconnected", "innerproduct", "linear")}


def family(op: str) -> str | None:
    """The compute family of an op type (conv, gemm), or None."""
    low = op.lower()
    return next((f for f, words in _FAMILIES.items() if any(w in low for w in words)), None)


def layer_table(path: Path) -> dict:
    """Each node's module path, op type and producers, and each output's node (kept beside the file)."""
    return remembered(path, "layers", lambda: _read(path))


def _read(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    producer = {out: node.name for node in model.graph.node for out in node.output}
    nodes = {}
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = ast.literal_eval(meta[SCOPES]) if SCOPES in meta else []
        nodes[node.name] = [scopes[-2] if len(scopes) >= 2 else "", node.op_type,
                            [producer[i] for i in node.input if i in producer]]
    return {"nodes": nodes, "outputs": producer}


class LayerNames:
    """Resolve a runtime's node name (and op type) to the module path of the ONNX node it came from."""

    def __init__(self, table: dict) -> None:
        self.nodes, self.outputs = table["nodes"], table["outputs"]
        self._seen: dict[tuple[str, str], str] = {}

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

    def layer(self, runtime_name: str, runtime_op: str = "") -> str:
        key = (runtime_name, runtime_op)
        if key not in self._seen:
            self._seen[key] = self._layer(runtime_name, runtime_op)
        return self._seen[key]

    def _layer(self, runtime_name: str, runtime_op: str) -> str:
        found = self.node(runtime_name)
        if found is None:
            return ""
        wanted = family(runtime_op)
        if wanted and family(self.nodes[found][1]) != wanted:  # a Conv reported under its Relu's name
            frontier = [found]
            for _ in range(3):
                frontier = [p for n in frontier for p in self.nodes[n][2]]
                match = next((n for n in frontier if family(self.nodes[n][1]) == wanted), None)
                if match:
                    return self.nodes[match][0]
        return self.nodes[found][0]
