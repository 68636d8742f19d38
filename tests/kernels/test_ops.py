"""The custom ops: registered schemas and fake kernels pass opcheck; on CPU they are the references."""

import torch

import rtgan.kernels.ops  # noqa: F401 - registers torch.ops.rtgan.*
from rtgan.kernels.asap_mlp import asap_mlp_reference
from rtgan.kernels.spade_norm import norm_denorm_reference


def test_spade_norm_denorm_op():
    g = torch.Generator().manual_seed(0)
    x, gamma, beta = (torch.randn(2, 3, 8, 9, generator=g) for _ in range(3))
    mean, var = torch.randn(3, generator=g), torch.rand(3, generator=g) + 0.5
    for args in [(x, gamma, beta, None, None, 1e-5, 0.2), (x, gamma, beta, mean, var, 1e-5, None)]:
        out = torch.ops.rtgan.spade_norm_denorm(*args)
        torch.testing.assert_close(out, norm_denorm_reference(*args))
        torch.library.opcheck(torch.ops.rtgan.spade_norm_denorm, args)


def test_asap_pixel_mlp_op():
    g = torch.Generator().manual_seed(0)
    channels = [5 + 4 * 2, 8, 3]  # 5 classes, tile 4 (2 frequencies), one hidden layer
    p = sum((ci + 1) * co for ci, co in zip(channels, channels[1:]))
    labels = torch.randint(0, 5, (1, 8, 12), generator=g)
    params = torch.randn(1, p, 2, 3, generator=g)
    for uint8 in (False, True):
        args = (labels, params, 5, channels, 4, None, uint8)
        out = torch.ops.rtgan.asap_pixel_mlp(*args)
        assert torch.equal(out, asap_mlp_reference(*args))
        torch.library.opcheck(torch.ops.rtgan.asap_pixel_mlp, args)
    compiled = torch.compile(lambda p: torch.ops.rtgan.asap_pixel_mlp(labels, p, 5, channels, 4, None, False),
                             backend="eager", fullgraph=True)  # fmt: skip
    torch.testing.assert_close(compiled(params), asap_mlp_reference(labels, params, 5, channels, 4))
