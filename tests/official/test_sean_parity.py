"""Differential test of SEAN (rtgan/models/sean.py) against ZPdesu/SEAN's generator, ACE layers and Zencoder.

Skipped unless RTGAN_OFFICIAL_DIR holds a `SEAN/` checkout. Its test script needs CUDA, so the generator
runs directly, with two monkeypatches: `Tensor.cuda` returns the tensor itself (the ACE layers draw their
noise with a hard-coded `.cuda()`), and, for small widths, the style width the official code hard-codes
(512 in `ACE` and in `Zencoder(3, 512)`) is set before the layers are built. The sync batch norm is the
plain BatchNorm2d stub of official_import (the same computation at eval). Compared: the style-image path
(the test mode: `netG(semantics, image)`) and the per-class-codes path (`status='UI_mode'` with an
`obj_dic`), with and without instance edges, normal and 'more' upsampling, a non-square crop, and the
noise both draw under one seed; a `latest_net_G.pth` saved from the official model goes through
`load_official`. The one-hot labels and instance edges are compared with `Pix2PixModel.preprocess_input`
(its CPU path). The released widths (ngf 64, style width 512, unpatched) run in a `slow` test.
"""

from __future__ import annotations

import types

import pytest
import torch

from rtgan.models import build, load_official, make_config

from official_import import load

TOL = 1e-4
# the official Zencoder's InstanceNorm2d(64) runs on 256 channels (parameter-free, so the same values)
pytestmark = pytest.mark.filterwarnings("ignore:input's size at dim=1 does not match num_features")
STYLE = 32  # style_length for the small configurations
CASES = {  # name -> rtgan / official options
    "celeba": dict(label_nc=19, no_instance=True, crop_size=64, aspect_ratio=1.0, num_upsampling_layers="normal"),
    "edges": dict(label_nc=5, no_instance=False, crop_size=64, aspect_ratio=1.0, num_upsampling_layers="normal"),
    "more-wide": dict(label_nc=6, contain_dontcare_label=True, no_instance=False, crop_size=128, aspect_ratio=2.0,
                      num_upsampling_layers="more", norm_G="spectralspadeinstance3x3"),
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def cpu_cuda():
    """`.cuda()` returns the tensor itself while this module's tests run (the ACE noise is drawn on CUDA)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
        yield


@pytest.fixture(scope="module")
def official():
    """The official generator module, with the style width made settable (`module.STYLE_LENGTH`)."""
    gen = load("SEAN", "models.networks.generator")
    ace, zencoder = gen.SPADEResnetBlock.__init__.__globals__["ACE"], gen.Zencoder  # the classes it builds with
    create = ace.create_gamma_beta_fc_layers

    def create_with_width(self):
        self.style_length = gen.STYLE_LENGTH  # read by the fc_mu layers, conv_gamma/conv_beta and the forward
        create(self)

    ace.create_gamma_beta_fc_layers = create_with_width
    gen.Zencoder = lambda input_nc, output_nc: zencoder(input_nc, gen.STYLE_LENGTH)
    gen.STYLE_LENGTH = 512
    return gen


def options(name: str) -> dict:
    return (
        dict(contain_dontcare_label=False, ngf=4, norm_G="spectralspadesyncbatch3x3", style_length=STYLE) | CASES[name]
    )


def build_official(gen, opts: dict, status: str = "train", by_fan_in: bool = False):
    o = types.SimpleNamespace(**opts, status=status)
    o.semantic_nc = o.label_nc + int(o.contain_dontcare_label) + int(not o.no_instance)
    gen.STYLE_LENGTH = opts["style_length"]
    net = gen.SPADEGenerator(o)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # every parameter random (blending weights and noise scales start at 0)
        for p in net.parameters():  # at the released widths, weights ~ 1.5 / sqrt(fan_in): no overflow
            scale = 1.5 / p[0].numel() ** 0.5 if by_fan_in and p.dim() > 1 else 0.3
            p.copy_(torch.randn(p.shape, generator=g) * scale)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.2)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return net.eval()


@torch.no_grad()
def unsaturated(net, model_like):
    """conv_img scaled so that the image before tanh has std 0.5: a saturated image would hide differences."""
    semantics, image = semantics_and_image(model_like, 2, seed=4)
    seen = []
    hook = net.conv_img.register_forward_hook(lambda m, i, out: seen.append(out.std()))
    torch.manual_seed(0)
    net(semantics, image)
    hook.remove()
    net.conv_img.weight.mul_(0.5 / seen[0])
    net.conv_img.bias.mul_(0.5 / seen[0])
    return net


def semantics_and_image(model, batch: int, seed: int):
    """Blocky label ids (every class present, some absent), instance ids, a style image in [-1, 1]."""
    h, w = model.config.size
    g = torch.Generator().manual_seed(seed)
    n = model.config.num_classes
    labels = torch.randint(0, n - 1, (batch, 1, h // 8, w // 8), generator=g).repeat_interleave(8, 2)
    labels = labels.repeat_interleave(8, 3)  # class n - 1 absent: its code stays 0
    instance = labels * 10 + (torch.rand(labels.shape, generator=g) < 0.1).long()
    semantics = model.prepare(labels, None if model.config.no_instance else instance)
    image = torch.rand(batch, 3, h, w, generator=g) * 2 - 1
    return semantics, image


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, official, tmp_path_factory):
    opts = options(request.param)
    with torch.device("meta"):
        shape = build(make_config("sean", **opts))  # for its config and prepare
    net = unsaturated(build_official(official, opts), shape)
    path = tmp_path_factory.mktemp("sean") / "latest_net_G.pth"
    torch.save(net.state_dict(), path)
    return official, net, load_official("sean", path, **opts), request.param


@torch.no_grad()
def test_style_image_path(pair):
    """The test mode: the Zencoder's codes of a style image, the noise drawn under one seed."""
    _, net, model, _ = pair
    semantics, image = semantics_and_image(model, 2, seed=5)
    torch.manual_seed(11)
    want = net(semantics, image)
    torch.manual_seed(11)
    codes = model.encode(image, semantics)
    got = model(semantics, style=codes, noise=None)
    torch.manual_seed(11)
    given = model(semantics, style=codes, noise=model.draw_noise(2))
    assert want.shape == got.shape == (2, 3, *model.config.size)
    diff = (got - want).abs().max().item()
    print(f"\nstyle image path: max |diff| {diff:.2e}, output std {want.std():.2f}")
    assert diff <= TOL and torch.equal(got, given)
    assert (want.abs() > 0.99).float().mean() < 0.05 and want.std() > 0.2  # neither saturated nor flat


def test_semantics_match_the_official_preprocess(pair):
    """One-hot labels and instance edges as Pix2PixModel.preprocess_input builds them (CPU: its FloatTensor path)."""
    _, _, model, _ = pair
    c = model.config
    h, w = c.size
    g = torch.Generator().manual_seed(10)
    labels = torch.randint(0, c.num_classes, (2, 1, h, w), generator=g)
    instance = torch.randint(0, 4, (2, 1, h, w), generator=g)
    p2p = load("SEAN", "models.pix2pix_model").Pix2PixModel
    fake = types.SimpleNamespace(opt=types.SimpleNamespace(**c.to_dict()), FloatTensor=torch.FloatTensor,
                                 ByteTensor=torch.ByteTensor, use_gpu=lambda: False)  # fmt: skip
    fake.get_edges = lambda t: p2p.get_edges(fake, t)
    data = {"label": labels.float(), "instance": instance.float(), "image": torch.zeros(2, 3, h, w)}
    want, _ = p2p.preprocess_input(fake, data)
    assert torch.equal(model.prepare(labels, None if c.no_instance else instance), want)


@torch.no_grad()
def test_codes_match_the_official_zencoder(pair):
    _, net, model, _ = pair
    semantics, image = semantics_and_image(model, 2, seed=6)
    want, got = net.Zencoder(image, semantics), model.encode(image, semantics)
    assert got.shape == (2, model.config.semantic_nc, STYLE)
    assert (got - want).abs().max().item() <= TOL
    assert torch.equal(got[:, model.config.num_classes - 1], torch.zeros(2, STYLE))  # an absent class: zeros


@torch.no_grad()
def test_per_class_codes_path(official, pair):
    """The UI mode: codes per class in `obj_dic` (batch 1, as the official loop `for i in range(1)`)."""
    _, net, model, name = pair
    opts = options(name)
    ui = build_official(official, opts, status="UI_mode")
    ui.load_state_dict(net.state_dict())
    semantics, image = semantics_and_image(model, 1, seed=7)
    codes = torch.randn(1, model.config.semantic_nc, STYLE, generator=torch.Generator().manual_seed(8)).tanh()
    obj_dic = {str(j): {"ACE": codes[0, j]} for j in range(codes.shape[1])}
    torch.manual_seed(12)
    want = ui.eval()(semantics, image, obj_dic=obj_dic)
    torch.manual_seed(12)
    got = model(semantics, style=codes)
    diff = (got - want).abs().max().item()
    print(f"\nper-class codes path ({name}): max |diff| {diff:.2e}")
    assert diff <= TOL


@pytest.mark.slow
@torch.no_grad()
def test_released_widths_through_the_preset(official, tmp_path):
    """The released generator's widths (ngf 64, style width 512: the official code unpatched) and keys, loaded through
    the sean-celebahq preset; crop_size 32 (keys do not depend on it) keeps the run short."""
    opts = dict(label_nc=19, contain_dontcare_label=False, no_instance=True, crop_size=32, aspect_ratio=1.0, ngf=64,
                norm_G="spectralspadesyncbatch3x3", num_upsampling_layers="normal", style_length=512)  # fmt: skip
    with torch.device("meta"):
        shape = build(make_config("sean", **opts))
    net = unsaturated(build_official(official, opts, by_fan_in=True), shape)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    del net  # 267 M parameters: one copy at a time where possible
    model = load_official("sean", tmp_path / "latest_net_G.pth", preset="sean-celebahq", crop_size=32)
    net = build_official(official, opts)
    net.load_state_dict(torch.load(tmp_path / "latest_net_G.pth", weights_only=True))
    semantics, image = semantics_and_image(model, 1, seed=9)
    torch.manual_seed(13)
    want = net.eval()(semantics, image)
    torch.manual_seed(13)
    got = model(semantics, style=model.encode(image, semantics))
    diff = (got - want).abs().max().item()
    print(f"\nreleased widths: max |diff| {diff:.2e}, output std {want.std():.2f}")
    assert diff <= TOL and want.std() > 0.1
