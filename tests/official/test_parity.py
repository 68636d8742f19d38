"""Differential tests: our generators vs the official code, same random weights, same inputs.

Skipped unless RTGAN_OFFICIAL_DIR points at checkouts of the official repositories (see
official_import.py). The official modules load our state dict with strict=True, so this also
checks the key layout of every reduced-width variant.
"""

from argparse import Namespace

import pytest
import torch

from helpers import NOT_OFFICIAL, VARIANTS, inputs, make
from official_import import load

TOL = 1e-5


def official_generator(model):
    c = model.config
    if c.arch == "spade":
        gen = load("SPADE", "models.networks.generator")
        opt = Namespace(**c.to_dict(), semantic_nc=c.semantic_nc)
        net = gen.SPADEGenerator(opt)
        if c.use_vae:
            enc = load("SPADE", "models.networks.encoder")
            return net, enc.ConvEncoder(opt)
        return net, None
    if c.arch == "asapnet":
        gen = load("ASAPNet", "models.networks.generator")
        opt = Namespace(**c.to_dict(), gpu_ids=[], output_nc=3, no_one_hot=False)
        return gen.ASAPNetsGenerator(opt), None
    net = load("pix2pixHD", "models.networks")
    return net.define_G(
        c.semantic_nc,
        3,
        c.ngf,
        c.netG,
        c.n_downsample_global,
        c.n_blocks_global,
        c.n_local_enhancers,
        c.n_blocks_local,
        c.norm,
    ), None


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v not in NOT_OFFICIAL])
def test_generator_matches_official(variant, capsys):
    ours, size = make(variant)
    theirs, encoder = official_generator(ours)
    capsys.readouterr()  # pix2pixHD prints the network
    state = ours.state_dict()
    theirs.load_state_dict({k: v for k, v in state.items() if not k.startswith("encoder.")}, strict=True)
    theirs.eval()
    _, _, sem = inputs(ours, size)
    with torch.no_grad():
        z = torch.randn(sem.shape[0], ours.config.z_dim) if getattr(ours.config, "use_vae", False) else None
        a = ours(sem, z=z)
        b = theirs(sem, z=z) if z is not None else theirs(sem)
        b = b[0] if isinstance(b, tuple) else b  # ASAPNet also returns its parameter grid
        if encoder is not None:
            encoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("encoder.")}, strict=True)
            image = torch.rand(2, 3, 200, 300) * 2 - 1
            for x, y in zip(ours.encode(image), encoder.eval()(image)):
                assert (x - y).abs().max() <= TOL
    err = (a - b).abs().max().item()
    print(f"{variant}: max abs error {err:.2e}")
    assert a.shape == b.shape
    assert err <= TOL
    assert 0.05 < b.std() and (b.abs() > 0.99).float().mean() < 0.5, "degenerate outputs prove little"


@pytest.mark.parametrize(
    "repo,variant",
    [
        ("SPADE", "spade-normal-syncbatch3"),
        ("SPADE", "spade-more-batch3-dontcare"),
        ("ASAPNet", "asap-tile16"),
        ("ASAPNet", "asap-tile32-tent-reflect"),
    ],
)
def test_prepare_matches_official(repo, variant):
    model, size = make(variant)
    c = model.config
    pm = load(repo, "models.pix2pix_model").Pix2PixModel
    labels, instance, ours = inputs(model, size)
    opt = Namespace(**{"no_one_hot": False, "no_instance": getattr(c, "no_instance_edge", None), **c.to_dict()})
    fake = Namespace(opt=opt, FloatTensor=torch.FloatTensor, ByteTensor=torch.ByteTensor, use_gpu=lambda: False)
    fake.get_edges = lambda t: pm.get_edges(fake, t)
    data = {
        "label": labels,
        "instance": instance if instance is not None else torch.zeros_like(labels),
        "image": torch.zeros(1),
    }
    theirs, _ = pm.preprocess_input(fake, data)
    assert torch.equal(ours, theirs)


# Full-width presets at a small spatial size (SPADE's official output size follows crop_size, so
# it is reduced in both models; ASAPNet keeps its crop, hence its tile size, and takes few tiles).
PRESET_SIZES = {
    "spade-cityscapes": ({"crop_size": 128}, (64, 128)),
    "spade-ade20k": ({"crop_size": 64}, (64, 64)),
    "spade-coco": ({"crop_size": 64}, (64, 64)),
    "spade-coco-vae": ({}, (256, 256)),
    "asapnet-cityscapes": ({}, (64, 128)),
    "asapnet-facades512": ({}, (64, 96)),
    "asapnet-facades1024": ({}, (128, 128)),
    "pix2pixhd-label2city-512p": ({}, (64, 128)),
    "pix2pixhd-label2city-1024p": ({}, (64, 128)),
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(PRESET_SIZES))
def test_presets_match_official_full_width(preset, capsys):
    from rtgan.models import get_model
    from rtgan.models.init import randomize_like_trained

    overrides, size = PRESET_SIZES[preset]
    ours = randomize_like_trained(get_model(preset, **overrides), *size, iterations=6)
    theirs, encoder = official_generator(ours)
    capsys.readouterr()
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if not k.startswith("encoder.")}, strict=True)
    theirs.eval()
    _, _, sem = inputs(ours, size, batch=1)
    z = torch.randn(1, ours.config.z_dim) if ours.config.arch == "spade" and ours.config.use_vae else None
    with torch.no_grad():
        a = ours(sem, z=z)
        b = theirs(sem, z=z) if z is not None else theirs(sem)
        b = b[0] if isinstance(b, tuple) else b
    err = (a - b).abs().max().item()
    with capsys.disabled():
        print(f"\n{preset} {size}: max abs error {err:.2e}, output std {b.std():.3f}")
    assert err <= TOL
