"""Fused ASAPNet pixelwise MLP kernel vs its reference (the model's own one-hot, code and MLP functions)."""

import pytest
import torch

from rtgan.kernels.asap_mlp import asap_mlp, asap_mlp_reference

pytest.importorskip("triton")


def _case(classes, tile, hid, depth, n_extra, dtype, b=2, cells=(2, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = cells[0] * tile, cells[1] * tile
    nfreq = tile.bit_length() - 1
    channels = [classes + n_extra + 4 * nfreq] + [hid] * (depth - 1) + [3]
    p = sum((ci + 1) * co for ci, co in zip(channels, channels[1:]))
    labels = torch.randint(0, classes, (b, h, w), generator=g)
    params = (torch.randn(b, p, *cells, generator=g) * 0.3).to(dtype)
    extra = None
    if n_extra:  # an instance-edge channel (0/1), then noise channels
        edge = (torch.rand(b, 1, h, w, generator=g) < 0.2).float()
        extra = torch.cat([edge, torch.randn(b, n_extra - 1, h, w, generator=g)], 1)
    return labels, params, channels, extra


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    "classes, tile, hid, depth, n_extra",
    [(15, 16, 32, 4, 0), (35, 16, 64, 5, 1), (13, 32, 24, 2, 0), (7, 4, 16, 3, 1), (15, 16, 32, 4, 5)],
)
def test_kernel_matches_reference(classes, tile, hid, depth, n_extra, dtype):
    labels, params, channels, extra = _case(classes, tile, hid, depth, n_extra, dtype)
    got = asap_mlp(labels, params, classes, channels, tile, extra)
    want = asap_mlp_reference(labels, params.float(), classes, channels, tile, extra)  # fp32 math as the kernel
    assert got.dtype == dtype and got.shape == want.shape
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(got.float(), want, **tol)


def test_uint8_output_matches_the_exported_graphs_conversion():
    labels, params, channels, _ = _case(15, 16, 32, 4, 0, torch.float32)
    got = asap_mlp(labels, params, 15, channels, 16, uint8=True)
    want = asap_mlp_reference(labels, params, 15, channels, 16, uint8=True)
    assert got.dtype == torch.uint8 and got.shape == (2, 32, 48, 3)
    assert (got.int() - want.int()).abs().max() <= 1 and (got == want).float().mean() > 0.99


def test_kernel_reproduces_the_generator():
    # the whole full-resolution stream of a real ASAPNet: params from its low-res stream, then the kernel
    from rtgan.models import get_model
    from rtgan.models.init import init_weights

    model = init_weights(get_model("landscape-asapnet")).eval()  # with its 4 noise channels
    c = model.config
    labels = torch.randint(0, c.num_classes, (1, 64, 96))
    with torch.no_grad():
        sem = model.prepare(torch.tensor(c.label_ids)[labels])
        expected = model(sem)
        params = model.lowres_stream(sem)
    from rtgan.models.labels import texture_noise

    noise = texture_noise(c.noise_nc, 64, 96, model.noise_octaves)  # the map the model paints with
    got = asap_mlp(labels, params, c.num_classes, c.mlp_channels, c.tile_size, noise)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_bad_channel_lists_are_refused():
    labels, params, channels, _ = _case(15, 16, 32, 4, 0, torch.float32)
    with pytest.raises(ValueError, match="do not fit"):
        asap_mlp(labels, params, 14, channels, 16)
