"""Forward behaviour of every reduced-width variant: shapes, range, determinism, batch independence."""

import copy
import math

import pytest
import torch

from rtgan.models import build, make_config
from rtgan.models.asapnet import cosine_coords

from helpers import VARIANTS, inputs, make


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward(variant):
    model, (h, w) = make(variant)
    _, _, sem = inputs(model, (h, w), batch=3)
    vae = getattr(model.config, "use_vae", False)
    z = torch.randn(3, model.config.z_dim) if vae else None
    with torch.no_grad():
        out = model(sem, z=z)
        again = model(sem, z=z)
        single = model(sem[1:2], z=None if z is None else z[1:2])
    assert out.shape == (3, 3, h, w)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert out.min() >= -1 and out.max() <= 1
    assert torch.equal(out, again)  # eval mode is deterministic
    # no cross-sample coupling in eval mode (convolution algorithms differ slightly by batch size)
    torch.testing.assert_close(single, out[1:2], atol=1e-3, rtol=0)
    assert (out[0] - out[2]).abs().max() > 1e-3  # different label maps, different images


def test_spade_vae_style():
    model, size = make("spade-vae")
    _, _, sem = inputs(model, size, batch=1)
    image = torch.rand(1, 3, *size) * 2 - 1
    with torch.no_grad():
        mu, logvar = model.encode(image)
        assert mu.shape == logvar.shape == (1, model.config.z_dim)
        a = model(sem, z=mu)
        b = model(sem, z=mu + 1)
        r1, r2 = model(sem), model(sem)  # random z when none is given, as the official test does
    assert (a - b).abs().max() > 1e-3 and (r1 - r2).abs().max() > 1e-3
    z = model.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(3))
    z2 = model.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(3))
    assert torch.equal(z, z2)


def test_spade_follows_input_size():
    model, _ = make("spade-normal-syncbatch3")  # trained crop 64x96; any multiple of 32 works
    for size in [(32, 32), (64, 96), (96, 64)]:
        _, _, sem = inputs(model, size, batch=1)
        with torch.no_grad():
            assert model(sem).shape[2:] == size


def test_asap_any_tile_multiple_and_no_stale_coordinates():
    model, _ = make("asap-tile16")
    _, _, sem_a = inputs(model, (32, 64), batch=1)
    _, _, sem_b = inputs(model, (48, 32), batch=2)
    with torch.no_grad():
        before = model(sem_b)
        model(sem_a)  # the official code caches codes of the first size here and reuses them
        after = model(sem_b)
    assert before.shape == (2, 3, 48, 32) and torch.equal(before, after)


def test_cosine_coords_definition():
    tile = 8
    c = cosine_coords(5, 11, tile)
    assert c.shape == (1, 4 * 3, 5, 11)
    y, x = 3, 10
    expected = []
    for f in (8, 4, 2):  # per scale: cos x, sin x, cos y, sin y of the phase within the period
        expected += [
            math.cos(2 * math.pi * (x % f) / f),
            math.sin(2 * math.pi * (x % f) / f),
            math.cos(2 * math.pi * (y % f) / f),
            math.sin(2 * math.pi * (y % f) / f),
        ]
    torch.testing.assert_close(c[0, :, y, x], torch.tensor(expected), atol=1e-6, rtol=0)


def test_instance_edges_definition():
    from rtgan.models.labels import instance_edges

    inst = torch.tensor([[0, 0, 0, 0], [0, 5, 5, 0], [0, 0, 0, 0]])[None]
    edges = instance_edges(inst)[0, 0]
    # every pixel that has a 4-neighbour with another id is an edge, on both sides of the change
    expected = torch.zeros(3, 4)
    for yy in range(3):
        for xx in range(4):
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                if 0 <= yy + dy < 3 and 0 <= xx + dx < 4 and inst[0, yy + dy, xx + dx] != inst[0, yy, xx]:
                    expected[yy, xx] = 1
    assert torch.equal(edges, expected)


def test_prepare_one_hot_and_dontcare():
    model, _ = make("spade-more-batch3-dontcare")  # label_nc=5 + don't-care, no instance
    labels = torch.tensor([[[0, 5], [3, 1]]])
    sem = model.prepare(labels)
    assert sem.shape == (1, 6, 2, 2)
    assert torch.equal(sem.argmax(1), labels) and torch.equal(sem.sum(1), torch.ones(1, 2, 2))


@pytest.mark.parametrize(
    "variant", ["spade-noise", "p2phd-local-noise", "p2phd-noise-decoder", "asap-noise-edges-in-mlp"]
)
def test_noise_inputs(variant):
    from rtgan.errors import InputError
    from rtgan.models.labels import texture_noise

    model, (h, w) = make(variant)
    k = model.config.noise_nc
    _, _, sem = inputs(model, (h, w))
    octaves = getattr(model, "noise_octaves", False)
    with torch.no_grad():
        fixed = model(sem)
        explicit = model(sem, noise=texture_noise(k, h, w, octaves).expand(2, -1, -1, -1))
        other = model(sem, noise=torch.randn(2, k, h, w, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(fixed, explicit)  # no noise given: the fixed map
    # the noise reaches the image inside flat label regions (blocky maps: 8x8 cells)
    assert (fixed - other).abs().amax() > 1e-2
    with pytest.raises(InputError, match="noise must be"):
        model(sem, noise=torch.randn(2, k + 1, h, w))
    plain, _ = make("p2phd-local")
    with pytest.raises(InputError, match="noise_nc=0"):
        plain(inputs(plain, (32, 64))[2], noise=torch.randn(2, 1, 32, 64))


@pytest.mark.parametrize("variant", ["p2phd-noise-decoder", "p2phd-bilinear-noise-decoder"])
def test_pix2pixhd_decoder_noise_enters_each_upsampling_stage_before_its_relu(variant):
    from torch import nn

    from rtgan.models.pix2pixhd import ResizeConv

    model, (h, w) = make(variant)
    k, n = model.config.noise_nc, model.config.n_downsample_global
    kind = nn.ConvTranspose2d if model.config.upsample == "transpose" else ResizeConv
    for i, (stage, stride) in model._noise_at.items():
        up = model.model[i - 2]
        assert isinstance(up, kind) and isinstance(model.model[i], nn.ReLU)
        width = up.conv.out_channels if kind is ResizeConv else up.out_channels
        assert model.noise_decoder[stage].out_channels == width and stride == 2 ** (n - 1 - stage)
    _, _, sem = inputs(model, (h, w))
    with torch.no_grad():
        model.model[1].weight[:, -k:] = 0  # no noise through the encoder: what remains is the decoder's
        noises = [torch.randn(2, k, h, w, generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
        for stage in range(n):  # each stage on its own changes the painting
            only = copy.deepcopy(model)
            for j, conv in enumerate(only.noise_decoder):
                if j != stage:
                    conv.weight.zero_()
            a, b = (only(sem, noise=x) for x in noises)
            assert (a - b).abs().amax() > 1e-3, stage
            for conv in only.noise_decoder:
                conv.weight.zero_()
            a, b = (only(sem, noise=x) for x in noises)
            assert torch.equal(a, b)


def _upsampled_2x(x: torch.Tensor, mode: str) -> torch.Tensor:
    """2x resizing per axis by hand: nearest repeats each pixel; bilinear (half-pixel centres) puts
    3/4 of pixel i and 1/4 of its neighbour on each side (clamped at the borders) at 2i and 2i+1."""
    for dim in (2, 3):
        if mode == "nearest":
            x = x.repeat_interleave(2, dim)
            continue
        n = x.shape[dim]
        i = torch.arange(n)
        prev, nxt = x.index_select(dim, (i - 1).clamp(min=0)), x.index_select(dim, (i + 1).clamp(max=n - 1))
        even, odd = 0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt
        x = torch.stack([even, odd], dim + 1).flatten(dim, dim + 1)
    return x


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_resize_conv_is_2x_resizing_then_a_conv_and_has_no_stride_pattern(mode):
    from torch import nn

    from rtgan.models.pix2pixhd import ResizeConv

    torch.manual_seed(0)
    up = ResizeConv(3, 4, mode)
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(up(x), up.conv(_upsampled_2x(x, mode)))
        # a constant input gives a constant interior: nothing repeats with the stride, where the
        # transposed conv it replaces (random weights) paints a 2x2 checkerboard
        flat = torch.ones(1, 3, 8, 8)
        inner = up(flat)[..., 1:-1, 1:-1]
        assert (inner - inner[..., :1, :1]).abs().amax() < 1e-5
        tconv = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
        inner = tconv(flat)[..., 1:-1, 1:-1]
        assert (inner[..., 0::2, :] - inner[..., 1::2, :]).abs().amax() > 1e-2


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_pix2pixhd_local_enhancer_with_resize_upsampling_has_no_transposed_convs(mode):
    from torch import nn

    from rtgan.models.pix2pixhd import ResizeConv

    arch, options, (h, w) = VARIANTS["p2phd-local2"]
    model = build(make_config(arch, **options, upsample=mode)).eval()
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    ups = [m for m in model.modules() if isinstance(m, ResizeConv)]
    assert len(ups) == options["n_downsample_global"] + 2 and {m.mode for m in ups} == {mode}
    _, _, sem = inputs(model, (h, w))
    with torch.no_grad():
        out = model(sem)
    assert out.shape == (2, 3, h, w) and out.abs().amax() <= 1


def test_octave_noise_has_grain_at_each_scale():
    from rtgan.models.labels import draw_noise

    n = draw_noise(3, 4, 64, 96, octaves=True, generator=torch.Generator().manual_seed(0))
    assert n.shape == (3, 4, 64, 96)
    torch.testing.assert_close(n.mean((2, 3)), torch.zeros(3, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(n.std((2, 3)), torch.ones(3, 4), atol=1e-5, rtol=0)
    # correlation of horizontal neighbours: ~0 for white noise, rising with each octave's grain
    corr = (n[..., 1:] * n[..., :-1]).mean((0, 2, 3))
    assert abs(corr[0]) < 0.05 and corr[1] > 0.3 and bool((corr[1:] > corr[:-1]).all()), corr
    white = draw_noise(1, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(white, torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0)))


def test_asapnet_noise_feeds_the_mlps_not_the_lowres_stream():
    model, (h, w) = make("asap-noise-edges-in-mlp")
    _, _, sem = inputs(model, (h, w))
    seen = []
    model.lowres_stream.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    k = model.config.noise_nc
    with torch.no_grad():
        model(sem, noise=torch.randn(2, k, h, w))
    assert seen == [model.config.semantic_nc]
    assert model.config.mlp_channels[0] == model.config.semantic_nc + k + 4 * 4  # + cosine code of a 16-px tile
