"""Boundary-sparse SPADE modulation equals the dense SPADE layer, from smooth maps to checkerboards."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtgan.data import landscapes as L
from rtgan.kernels.sparse_spade import SparseSPADE, sparsify
from rtgan.models.spade import SPADE


def _maps(kind: str, b: int, h: int, w: int, k: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    if kind == "landscape":
        ids = np.stack([L.layout(i, h, w) for i in range(b)])
        lut = {v: i % k for i, v in enumerate(L.LABEL_IDS)}
        return torch.from_numpy(np.vectorize(lut.get)(ids)).long()
    if kind == "noise":
        return torch.randint(0, k, (b, h, w), generator=g)
    if kind.startswith("checker"):
        cell = int(kind[-1])
        y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        return ((y // cell + x // cell) % 2).expand(b, h, w) * (k - 1)
    return torch.full((b, h, w), 2)  # "flat"


def _seg(labels, k, edges=None):
    seg = F.one_hot(labels, k).permute(0, 3, 1, 2).float()
    return torch.cat([seg, edges[:, None].float()], 1) if edges is not None else seg


@pytest.mark.parametrize("kind", ["landscape", "noise", "checker1", "checker2", "flat"])
@pytest.mark.parametrize("norm, with_edges", [("instance", False), ("batch", True)])
def test_sparse_modulation_equals_dense(kind, norm, with_edges):
    torch.manual_seed(0)
    k, c = 6, 5
    layer = SPADE(c, k + int(with_edges), norm=norm, hidden=16).eval()
    if norm == "batch":
        layer.param_free_norm.running_mean.normal_()
        layer.param_free_norm.running_var.uniform_(0.5, 2)
    labels = _maps(kind, 2, 24, 37, k)
    edges = (torch.rand(labels.shape) < 0.02).long() if with_edges else None
    seg = _seg(labels, k, edges)
    x = torch.randn(2, c, 12, 37) if kind == "flat" else torch.randn(2, c, 24, 37)
    sparse = SparseSPADE(layer, k, max_density=1.1)  # never fall back: test the sparse path itself
    with torch.no_grad():
        torch.testing.assert_close(sparse(x, seg), layer(x, seg), atol=1e-4, rtol=1e-4)


def test_dense_fallback_above_the_density_threshold():
    torch.manual_seed(0)
    layer = SPADE(4, 5, norm="instance", hidden=8).eval()
    seg = _seg(_maps("noise", 1, 16, 16, 5), 5)
    x = torch.randn(1, 4, 16, 16)
    calls = []
    sparse = SparseSPADE(layer, 5, max_density=0.5)
    sparse.modulation = lambda *a: calls.append(a)  # would fail if used
    with torch.no_grad():
        torch.testing.assert_close(sparse(x, seg), layer(x, seg))
    assert not calls


def test_sparsified_generator_equals_the_dense_one():
    from rtgan.models import get_model
    from rtgan.models.init import init_weights

    model = init_weights(get_model("spade-cityscapes", ngf=8)).eval()
    labels = torch.from_numpy(L.layout(3, 64, 128).astype(np.int64)) % 35
    instance = labels.clone()
    with torch.no_grad():
        sem = model.prepare(labels[None], instance[None])
        z = None
        dense = model(sem, z)
        sparse_model = sparsify(model, max_density=1.1)
        sparse = sparse_model(sem, z)
        torch.testing.assert_close(sparse, dense, atol=1e-4, rtol=1e-4)
        # a second map through the same layers: the per-forward label cache must not serve the first
        other = (labels + 5) % 35
        sem2 = model.prepare(other[None], other[None])
        sparse2 = sparse_model(sem2, z)
        assert not torch.allclose(sparse2, sparse)
        torch.testing.assert_close(sparse2, _dense_copy(sparse_model)(sem2, z), atol=1e-4, rtol=1e-4)


def _dense_copy(sparse_model):
    """The generator with every SparseSPADE swapped back for the dense SPADE layer it wraps."""
    import copy

    model = copy.deepcopy(sparse_model)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, SparseSPADE):
                setattr(module, name, child.spade)
    return model


def test_calibration_sets_a_fallback_density_per_layer_and_keeps_outputs_exact():
    from rtgan.kernels.sparse_spade import calibrate
    from rtgan.models import get_model
    from rtgan.models.init import init_weights

    model = init_weights(get_model("spade-cityscapes", ngf=8)).eval()
    labels = torch.from_numpy(L.layout(5, 64, 128).astype(np.int64)) % 35
    with torch.no_grad():
        sem = model.prepare(labels[None], labels[None])
        dense = model(sem)
        sparse = sparsify(model)
        report = calibrate(sparse, sem, repeats=1)
        out = sparse(sem)
    layers = [m for m in sparse.modules() if isinstance(m, SparseSPADE)]
    assert len(report) == len(layers) > 0
    assert all(0 <= r["max_density"] <= 1 and 0 <= r["density"] <= 1 for r in report)
    assert [m.max_density for m in layers] == [r["max_density"] for r in report]
    torch.testing.assert_close(out, dense, atol=1e-4, rtol=1e-4)
