"""The boundary-sparse SPADE graph, exported and run by ONNX Runtime, equals the dense PyTorch model.

The boundary set is data-dependent (NonZero in the graph), so the graph is traced on one map and
checked on others: a few regions with instance edges, one constant class, a 2-pixel checkerboard
(every pixel a boundary pixel).
"""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from rtgan.export.sparse_graph import SparseSPADEGraph, sparse_inference_graph

from helpers import make

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


class FloatOutput(nn.Module):
    """The sparse graph up to the generator's float image (the uint8 conversion would hide 1e-4)."""

    def __init__(self, graph):
        super().__init__()
        self.model = graph.model

    def forward(self, labels, instance):
        return self.model(*self.model.prepare_inputs(labels=labels, instance=instance))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model, (h, w) = make("spade-normal-syncbatch3")  # 5 classes + edges, 64x96, SPADE layers 2x3 .. 64x96
    graph = sparse_inference_graph(model, h, w, min_pixels=16 * 24)  # the two smallest resolutions stay dense
    assert sum(isinstance(m, SparseSPADEGraph) for m in graph.modules()) > 0
    path = tmp_path_factory.mktemp("sparse") / "model.onnx"
    traced_on = (torch.randint(0, 5, (2, h, w)).int(), torch.randint(0, 3, (2, h, w)).int())
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            FloatOutput(graph), traced_on, str(path), input_names=["labels", "instance"], output_names=["image"],
            opset_version=18, dynamo=False, dynamic_axes={n: {0: "batch"} for n in ("labels", "instance", "image")},
        )  # fmt: skip
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"NonZero", "ScatterND", "Gather"} <= ops  # the boundary set is the graph's, not the tracer's
    return model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), (h, w)


def maps(h: int, w: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    regions = torch.where((y < h // 2) & (x < w // 3), 1, torch.where(y > 40, 3, 0))
    instance = regions + 10 * (x > w // 2)  # an instance edge inside class 0 and 3
    checker = torch.where((y // 2 + x // 2) % 2 == 0, 1, 4)
    const = torch.full((h, w), 2)
    return {"regions": (regions, instance), "constant": (const, const), "checkerboard": (checker, checker)}


@pytest.mark.parametrize("name", ["regions", "constant", "checkerboard"])
def test_sparse_graph_equals_dense_model(exported, name):
    model, session, (h, w) = exported
    labels, instance = maps(h, w)[name]
    labels = torch.stack([labels, labels.flip(1)]).int()  # batch 2: two different boundary sets
    instance = torch.stack([instance, instance.flip(1)]).int()
    with torch.no_grad():
        ref = model(model.prepare(labels, instance)).numpy()
    out = session.run(None, {"labels": labels.numpy(), "instance": instance.numpy()})[0]
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
