"""pix2pix training on rendered sketches: a step, exact resume, the adversarial losses, the CLI's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtgan.data import sketches
from rtgan.data.synthetic import SketchDataset
from rtgan.errors import ConfigError
from rtgan.train import DiscriminatorConfig, TrainConfig, Trainer, train
from rtgan.train.losses import gan_d, gan_g
from rtgan.train.options import check, parse
from rtgan.train.report import sample_grid


def config(out, **kw) -> TrainConfig:
    base = dict(
        arch="pix2pix",
        model=dict(netG="resnet_6blocks", ngf=4, norm="batch", no_dropout=True),
        out=str(out),
        data="sketches",
        size=(32, 32),
        count=4,
        variants=2,
        batch_size=1,
        steps=2,
        no_TTUR=True,
        gan_mode="lsgan",
        lambda_l1=100.0,
        discriminator=DiscriminatorConfig(ndf=4, n_layers_D=2, num_D=1),
        save_every=1000,
        sample_every=1000,
        log_every=1,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def test_dataset_items_are_a_sketch_of_the_scene_and_its_photo():
    ds = SketchDataset(3, 32, 48, seed=5, variants=2)
    assert len(ds) == 6
    item = ds[3]  # scene 1 (seed 6), style 8
    labels, photo = ds.scenes.pair(1)
    drawn = sketches.sketch(labels, photo, style=5 + 3)
    to_uint8 = lambda x: ((x + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    assert (to_uint8(item["source"]) == drawn).all() and (to_uint8(item["image"]) == photo).all()
    assert (ds[2]["image"] == item["image"]).all() and (ds[2]["source"] != item["source"]).any()
    with pytest.raises(IndexError):
        ds[6]


def test_one_step_trains_the_generator_and_a_discriminator_of_the_pairing(tmp_path):
    trainer = Trainer(config(tmp_path))
    first = trainer.discriminator.scales[0].layers[0][0]
    assert first.in_channels == 6  # sketch beside the image: D judges the pair
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    losses = trainer.train_step(next(iter(trainer.batches())))
    assert set(losses) == {"G_gan", "G_feat", "G_l1", "D"} and all(np.isfinite(list(losses.values())))
    assert sum(not torch.equal(v, before[k]) for k, v in trainer.generator.state_dict().items()) > len(before) // 2
    assert any(not torch.equal(v, d_before[k]) for k, v in trainer.discriminator.state_dict().items())


def test_resume_repeats_uninterrupted_training(tmp_path):
    straight = train(config(tmp_path / "a", steps=3))
    train(config(tmp_path / "b", steps=2, save_every=2))
    resumed = train(config(tmp_path / "b", steps=3, save_every=2))
    for k, v in straight.generator.state_dict().items():
        assert torch.equal(v, resumed.generator.state_dict()[k]), k
    assert straight.history[2:] == resumed.history


def test_adversarial_losses_are_the_official_formulas():
    g = torch.Generator().manual_seed(0)
    real = [[torch.randn(2, 1, 5, 5, generator=g)], [torch.randn(2, 1, 3, 3, generator=g)]]
    fake = [[torch.randn(2, 1, 5, 5, generator=g)], [torch.randn(2, 1, 3, 3, generator=g)]]
    r, f = real[0][-1], fake[0][-1]
    # LSGAN (CycleGAN's backward_D halves the sum), one scale
    want = 0.5 * (((r - 1) ** 2).mean() + (f**2).mean())
    assert torch.allclose(gan_d("lsgan", real[:1], fake[:1]), want)
    assert torch.allclose(gan_g("lsgan", fake[:1]), ((f - 1) ** 2).mean())
    # pix2pix's BCE on logits
    want = 0.5 * (-F.logsigmoid(r).mean() - F.logsigmoid(-f).mean())
    assert torch.allclose(gan_d("vanilla", real[:1], fake[:1]), want, atol=1e-6)
    assert torch.allclose(gan_g("vanilla", fake[:1]), -F.logsigmoid(f).mean(), atol=1e-6)
    # hinge, and the mean over scales
    two = F.relu(1 - r).mean() + F.relu(1 + f).mean() + F.relu(1 - real[1][-1]).mean() + F.relu(1 + fake[1][-1]).mean()
    assert torch.allclose(gan_d("hinge", real, fake), two / 2)


def test_sample_grid_shows_sketch_photo_and_painting(tmp_path):
    trainer = Trainer(config(tmp_path))
    grid = sample_grid(trainer.generator, trainer.dataset, count=2)
    assert grid.shape == (64, 96, 3)
    item = trainer.dataset[0]
    to_uint8 = lambda x: ((x + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    assert (grid[:32, :32] == to_uint8(item["source"])).all() and (grid[:32, 32:64] == to_uint8(item["image"])).all()


def test_recipe_and_the_checks_before_torch(tmp_path):
    cfg = check(parse(["--recipe", "sketch2landscape-pix2pix", "--out", str(tmp_path)]))
    assert cfg["arch"] == "pix2pix" and cfg["data"] == "sketches" and cfg["gan_mode"] == "lsgan"
    assert cfg["lambda_l1"] == 100 and cfg["batch_size"] == 1 and cfg["model"]["netG"] == "unet_256"
    for args, says in (
        (["--arch", "pix2pix", "--data", "landscapes"], "trains on --data sketches"),
        (["--preset", "landscape-asapnet", "--data", "sketches"], "label-map generator"),
        (["--arch", "pix2pix", "--data", "sketches", "--lambda-texture", "1"], "texture"),
        (["--arch", "pix2pix", "--data", "sketches", "--gan-mode", "wgan"], "wgan"),
        (["--arch", "pix2pix", "--data", "sketches", "--root", "x"], "rendered"),
    ):
        with pytest.raises(ConfigError, match=says):
            check(parse([*args, "--out", str(tmp_path)]))
