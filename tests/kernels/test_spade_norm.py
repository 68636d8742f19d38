"""Fused SPADE norm-denorm kernel vs its PyTorch reference, and the reference vs the model's SPADE layer."""

import pytest
import torch
import torch.nn.functional as F

from rtgan.kernels.spade_norm import norm_denorm, norm_denorm_reference

triton = pytest.importorskip("triton")

SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (1, 4, 33, 65), (3, 2, 64, 64), (1, 2, 97, 131)]  # odd, 1-pixel, > BLOCK


def _inputs(shape, dtype, adain=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    x = (torch.randn(shape, generator=g) * 3 + 5).to(dtype)  # an offset mean: tests the variance's stability
    side = (n, c) if adain else shape
    gamma = (torch.randn(side, generator=g) * 0.5).to(dtype)
    beta = torch.randn(side, generator=g).to(dtype)
    return x, gamma, beta


def _tol(dtype):
    return dict(atol=2e-5, rtol=2e-5) if dtype == torch.float32 else dict(atol=2e-2, rtol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape", SHAPES)
def test_instance_mode_matches_reference(shape, dtype):
    if shape[2] * shape[3] == 1 and dtype == torch.float16:
        pytest.skip("one pixel: x - mean is exactly 0; covered in fp32")
    x, gamma, beta = _inputs(shape, dtype)
    got = norm_denorm(x, gamma, beta)
    assert got.dtype == dtype and got.shape == x.shape
    torch.testing.assert_close(got, norm_denorm_reference(x, gamma, beta), **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape", SHAPES)
def test_running_stats_mode_matches_reference(shape, dtype):
    x, gamma, beta = _inputs(shape, dtype)
    mean, var = torch.randn(shape[1]), torch.rand(shape[1]) + 0.5
    got = norm_denorm(x, gamma, beta, mean, var)
    torch.testing.assert_close(got, norm_denorm_reference(x, gamma, beta, mean, var), **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (3, 4, 33, 65)])
def test_per_sample_stats_equal_instance_mode(shape, dtype):
    # the TensorRT plugin's instance norm: statistics (N, C) from the graph's reductions, passed in
    x, gamma, beta = _inputs(shape, dtype)
    mean, var = x.float().mean((2, 3)), x.float().var((2, 3), unbiased=False)
    assert mean.shape == shape[:2]
    got = norm_denorm(x, gamma, beta, mean, var)
    torch.testing.assert_close(got, norm_denorm_reference(x, gamma, beta), **_tol(dtype))
    torch.testing.assert_close(norm_denorm_reference(x, gamma, beta, mean, var), got, **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (2, 8, 40, 40)])
def test_adain_mode_and_no_activation(shape, dtype):
    x, gamma, beta = _inputs(shape, dtype, adain=True)
    for slope in (0.2, None):
        got = norm_denorm(x, gamma, beta, slope=slope)
        torch.testing.assert_close(got, norm_denorm_reference(x, gamma, beta, slope=slope), **_tol(dtype))


def test_large_plane_uses_several_parts_and_stays_accurate():
    from rtgan.kernels.spade_norm import _parts

    shape = (1, 1, 256, 512)  # 131072 pixels: split into parts, merged in the kernel
    assert _parts(256 * 512)[0] > 1
    x, gamma, beta = _inputs(shape, torch.float32)
    x = x + 1000  # a large offset: naive sum-of-squares variance would lose digits here
    torch.testing.assert_close(norm_denorm(x, gamma, beta), norm_denorm_reference(x, gamma, beta), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_reference_is_what_the_spade_layer_computes(norm):
    # the reference is SPADE's math: param-free norm, * (1 + gamma) + beta, then the blocks' leaky ReLU
    from rtgan.models.spade import SPADE

    torch.manual_seed(0)
    layer = SPADE(6, 4, norm=norm, hidden=8).eval()
    if norm == "batch":
        layer.param_free_norm.running_mean.normal_()
        layer.param_free_norm.running_var.uniform_(0.5, 2)
    x, seg = torch.randn(2, 6, 12, 10), torch.rand(2, 4, 12, 10)
    with torch.no_grad():
        expected = F.leaky_relu(layer(x, seg), 0.2)
        actv = layer.mlp_shared(seg)
        gamma, beta = layer.mlp_gamma(actv), layer.mlp_beta(actv)
        stats = (layer.param_free_norm.running_mean, layer.param_free_norm.running_var) if norm == "batch" else ()
        torch.testing.assert_close(norm_denorm_reference(x, gamma, beta, *stats), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(norm_denorm(x, gamma, beta, *stats), expected, atol=1e-5, rtol=1e-5)
