"""The classic GAN recipes (rtgan.train.classic) on the procedural blobs: short CPU runs, one thread.

Sizes are cut to keep the file fast (small ngf/ndf/latents, 4 classes, 8-32 image batches). The
PyTorch-GAN DCGAN trains at its reference 32x32. InfoGAN trains at 16x16 with lr 1e-3 (its G's
128-channel convs are what cost on CPU): there its discriminator's last batch norm sees 1x1
features, which blinds the adversarial head to batch-level differences, but the information step,
the part under test, is unaffected.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from rtgan import models
from rtgan.data.shapes import blobs
from rtgan.errors import ConfigError, InputError
from rtgan.models.io import read_config
from rtgan.train.classic import train_classic

# family -> (preset, overrides, train_classic kwargs, dataset, batch size, steps)
FAMILIES = {
    "dcgan-examples": ("dcgan-pytorch-examples", dict(nz=8, ngf=4), dict(ndf=4), lambda: blobs(8, 4, 64, 3), 8, 20),
    "dcgan-pytorch-gan": ("dcgan-pytorch-gan", dict(latent_dim=8), {}, lambda: blobs(8, 4, 32, 1), 8, 20),
    "cgan": ("cgan-pytorch-gan", dict(latent_dim=8, n_classes=4, img_size=16), {},
             lambda: blobs(32, 4, 16, 1), 32, 100),
    "infogan": ("infogan-pytorch-gan", dict(latent_dim=8, n_classes=4, img_size=16), dict(lr=1e-3),
                lambda: blobs(16, 4, 16, 1), 8, 60),
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Two shared cores: one thread is several times faster than two here (and the runs repeat)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each family trained once, from a generator built here (so its starting weights are known)."""
    done = {}

    def get(family):
        if family not in done:
            preset, over, kw, data, batch, steps = FAMILIES[family]
            torch.manual_seed(0)
            G = models.get_model(preset, **over)
            out = tmp_path_factory.mktemp(family)
            start = copy.deepcopy(G.state_dict())
            run = train_classic(G, data(), steps=steps, batch_size=batch, seed=0, out=out, **kw)
            done[family] = run, start, out
        return done[family]

    return get


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_short_run_moves_the_losses_and_the_weights(family, runs):
    run, start, out = runs(family)
    steps = FAMILIES[family][-1]
    d, g = run.losses("d_loss"), run.losses("g_loss")
    assert len(run.history) == steps and [h["step"] for h in run.history] == list(range(1, steps + 1))
    assert all(math.isfinite(x) for x in d + g)
    assert d[-1] != d[0]
    if family == "dcgan-pytorch-gan":
        # its discriminator starts near-blind (conv weights ~ N(0, 0.02), then BatchNorm eps 0.8
        # flattens its features: both losses sit at log 2 for a while, as the reference's would);
        # 20 steps only take its loss just under log 2
        assert np.mean(d[-5:]) < np.mean(d[:5]) and np.mean(d[-5:]) < math.log(2)
    else:  # DCGAN (pytorch/examples), CGAN and InfoGAN's discriminators learn within the run
        moved = abs(np.mean(d[-5:]) - np.mean(d[:5]))
        assert moved > 0.05, moved
    changed = [
        k for k, v in run.generator.state_dict().items() if v.is_floating_point() and not torch.equal(v, start[k])
    ]
    assert len(changed) == sum(v.is_floating_point() for v in start.values())  # every float tensor trained
    assert not run.generator.training  # handed back in eval mode


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_same_seed_gives_the_same_run(family):
    preset, over, kw, data, batch, _ = FAMILIES[family]
    a, b, c = (train_classic(preset, data(), steps=3, batch_size=batch, seed=s, **kw, **over) for s in (5, 5, 6))
    assert a.history == b.history
    sa, sb = a.generator.state_dict(), b.generator.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.history != c.history


def _mean_abs(x: torch.Tensor, y: torch.Tensor) -> float:
    return (x - y).abs().mean().item()


def test_cgan_images_depend_on_the_class(runs):
    run, _, _ = runs("cgan")
    G, n = run.generator, 4
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = [G(z, torch.full((16,), k)) for k in range(n)]  # the same z for every class
    within = np.mean([_mean_abs(x[k][:8], x[k][8:]) for k in range(n)])  # two z's, one class
    across = np.mean([_mean_abs(x[i], x[j]) for i in range(n) for j in range(i + 1, n)])  # one z, two classes
    assert across > 3 * within, (across, within)


def test_infogan_codes_steer_the_image_and_the_information_loss_falls(runs):
    run, _, _ = runs("infogan")
    info, cat = run.losses("info_loss"), run.losses("info_cat")
    assert np.mean(info[-10:]) < np.mean(info[:10]) - 0.1, (np.mean(info[:10]), np.mean(info[-10:]))
    assert np.mean(cat[:10]) == pytest.approx(math.log(4), abs=0.05)  # chance level at the start
    G = run.generator
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(1))
    onehot = torch.nn.functional.one_hot(torch.arange(8) % 4, 4).float()
    zero = torch.zeros(8, 2)
    with torch.no_grad():
        base = G(z, onehot, zero)
        for i in range(2):  # each continuous code moves the image with z and class fixed
            code = zero.clone()
            code[:, i] = 1.0
            assert _mean_abs(G(z, onehot, code), base) > 0.05
        assert _mean_abs(G(z, onehot.roll(1, 1), zero), base) > 0.2  # and so does the class


def test_the_run_writes_losses_and_a_generator_that_loads_and_exports(runs):
    from rtgan import Engine
    from rtgan.export import export
    from rtgan.export.exporter import reference_image

    run, _, out = runs("cgan")
    rows = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert rows == run.history
    meta = read_config(out / "generator")
    assert meta["training"]["recipe"] == "cgan" and meta["training"]["adversarial"] == "mse"
    loaded = models.load(out / "generator")
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(2))
    label = torch.tensor([0, 1, 3])
    with torch.no_grad():
        ref = run.generator(z, label)
        assert torch.equal(loaded(z, label), ref)
    feeds = {"z": z.numpy(), "label": label.numpy()}
    engine = Engine.load(export(loaded, height=16, width=16, out=out / "engine", progress=False))
    got, want = engine.run(**feeds), reference_image(loaded, feeds)  # uint8 (B, H, W, C)
    assert got.shape == want.shape == (3, 16, 16, 1)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_the_blobs_and_what_the_recipes_refuse():
    images, labels = blobs(4, 3, 32, 3, seed=1).tensors
    assert images.shape == (12, 3, 32, 32) and labels.tolist() == [0, 1, 2] * 4
    assert images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, blobs(4, 3, 32, 3, seed=1).tensors[0])
    with pytest.raises(InputError, match=r"\(N, 1, 16, 16\)"):
        train_classic("cgan-pytorch-gan", blobs(4, 4, 32, 1), steps=1, batch_size=4, n_classes=4, img_size=16)
    with pytest.raises(InputError, match="labels"):
        train_classic(
            "cgan-pytorch-gan", blobs(4, 4, 16, 1).tensors[0], steps=1, batch_size=4, n_classes=4, img_size=16
        )
    with pytest.raises(ConfigError, match="no classic training recipe"):
        train_classic(torch.nn.Linear(2, 2), steps=1)
