"""CycleGAN recipe: the image pool's contract, the official step order (D frozen in the G step),
bit-exact resume, the exported G_A, the command line's errors. Tiny nets at 32x32, one thread."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rtgan import models
from rtgan.errors import ConfigError
from rtgan.train.cyclegan import CycleGANTrainConfig, CycleGANTrainer, main, train
from rtgan.train.pool import ImagePool


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(out, **kw) -> CycleGANTrainConfig:
    options = dict(size=(32, 32), count=4, ngf=4, ndf=4, netG="resnet_6blocks", progress=False, steps=4)
    return CycleGANTrainConfig(out=str(out), **{**options, **kw})


# -- the image pool ---------------------------------------------------------------------------


def _image(i: int) -> torch.Tensor:
    return torch.full((1, 1, 2, 2), float(i))


def test_pool_returns_new_images_until_full_then_swaps_as_its_draws_say():
    pool = ImagePool(pool_size=3, seed=7)
    for i in range(3):  # filling: every image comes back as is and is stored
        assert torch.equal(pool.query(_image(i)), _image(i))
        assert [float(im[0, 0, 0]) for im in pool.images] == list(range(i + 1))
    # the contract replayed by hand from the same seed: u > 0.5 swaps slot randint(0, 3)
    g = torch.Generator().manual_seed(7)
    mirror, swaps = [0.0, 1.0, 2.0], 0
    for i in range(3, 203):
        out = float(pool.query(_image(i))[0, 0, 0, 0])
        if float(torch.rand((), generator=g)) > 0.5:
            slot = int(torch.randint(0, 3, (), generator=g))
            assert out == mirror[slot]  # a stored image comes back ...
            mirror[slot] = float(i)  # ... and the new one takes its place
            swaps += 1
        else:
            assert out == float(i)  # the new image, pool unchanged
        assert [float(im[0, 0, 0]) for im in pool.images] == mirror
    assert 70 < swaps < 130  # probability 0.5


def test_pool_invariant_batches_reproducibility_and_state():
    """Each returned image is the input or one stored before; seeded pools agree; state resumes."""
    a, b = ImagePool(4, seed=1), ImagePool(4, seed=1)
    seen: set[float] = set()
    for step in range(30):
        batch = torch.arange(3 * step, 3 * step + 3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 1, 2, 2)
        before = {float(im[0, 0, 0]) for im in a.images}
        out = a.query(batch)
        assert out.shape == batch.shape and not out.requires_grad
        new = {float(v) for v in batch[:, 0, 0, 0]}
        for v in out[:, 0, 0, 0].tolist():
            assert v in new or v in before
        assert torch.equal(out, b.query(batch))
        seen |= new
        assert len(a) == min(4, len(seen))
    c = ImagePool(4, seed=99)
    c.load_state_dict(a.state_dict())
    probe = torch.full((5, 1, 2, 2), -1.0)
    assert torch.equal(a.query(probe), c.query(probe))
    off = ImagePool(0)
    assert torch.equal(off.query(probe), probe) and len(off) == 0


# -- the step ---------------------------------------------------------------------------------


def _cancelled_biases(net: nn.Module) -> set[str]:
    """Biases of convs that an instance norm follows: their gradient is zero by construction."""
    names = set()
    for prefix, module in net.named_modules():
        if isinstance(module, nn.Sequential):
            kids = list(module.named_children())
            for (name, m), (_, nxt) in zip(kids, kids[1:]):
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(nxt, nn.InstanceNorm2d):
                    names.add(f"{prefix}.{name}.bias".lstrip("."))
    return names


def test_generator_step_freezes_the_discriminators_and_reaches_every_generator_weight(tmp_path):
    trainer = CycleGANTrainer(tiny(tmp_path))
    a, b = trainer.data.batch(0, 1)
    d_before = {k: v.clone() for d in (trainer.D_A, trainer.D_B) for k, v in d.state_dict().items()}
    losses, fake_A, fake_B = trainer.generator_step(a, b)
    assert set(losses) == {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B"}
    for d in (trainer.D_A, trainer.D_B):
        assert all(p.grad is None and p.requires_grad for p in d.parameters())  # frozen, then thawed
    after = {k: v for d in (trainer.D_A, trainer.D_B) for k, v in d.state_dict().items()}
    assert all(torch.equal(d_before[k], after[k]) for k in after)
    for g in (trainer.G_A, trainer.G_B):
        skip = _cancelled_biases(g)
        assert skip  # instance norm after every inner conv
        for name, p in g.named_parameters():
            assert p.grad is not None, name
            assert name in skip or p.grad.abs().sum() > 0, name
    d_losses = trainer.discriminator_step(a, b, fake_A, fake_B)
    assert set(d_losses) == {"D_A", "D_B"}
    assert not all(torch.equal(d_before[k], v) for k, v in trainer.D_A.state_dict().items())


def test_losses_fall_on_one_pair(tmp_path):
    trainer = CycleGANTrainer(tiny(tmp_path, count=1, lr=0.002, steps=12))
    a, b = trainer.data.batch(0, 1)
    history = [trainer.train_step(a, b) for _ in range(12)]
    rec = lambda h: h["cycle_A"] + h["cycle_B"] + h["idt_A"] + h["idt_B"]  # noqa: E731
    assert rec(history[-1]) < 0.7 * rec(history[0])


def test_linear_decay_matches_the_official_rule(tmp_path):
    trainer = CycleGANTrainer(tiny(tmp_path, steps=10, n_steps_decay=4))
    assert [trainer.lr_factor(s) for s in range(10)] == [1.0] * 6 + [0.8, 0.6, 0.4, pytest.approx(0.2)]


# -- runs: resume, export, command line -------------------------------------------------------


def test_resume_repeats_an_uninterrupted_run_exactly(tmp_path):
    kw = dict(pool_size=1, save_every=2, steps=4)  # pool of 1: swaps from the second step on
    whole = train(tiny(tmp_path / "whole", **kw)).history
    train(tiny(tmp_path / "split", **{**kw, "steps": 2}))
    resumed = train(tiny(tmp_path / "split", **kw))
    assert resumed.step == 4 and resumed.history == whole[2:]
    logged = [json.loads(line) for line in (tmp_path / "split" / "losses.jsonl").read_text().splitlines()]
    assert [row["step"] for row in logged][-1] == 4
    assert (tmp_path / "whole" / "samples" / "latest.png").is_file()
    with pytest.raises(ConfigError, match="lambda_A=10.0 \\(now 1.0\\)"):
        train(tiny(tmp_path / "split", **{**kw, "lambda_A": 1.0}))


def test_saved_G_A_loads_and_paints_as_the_trainer(tmp_path):
    trainer = train(tiny(tmp_path, steps=2))
    loaded = models.load(tmp_path / "generator")
    assert loaded.config == trainer.G_A.config
    x = trainer.data.batch(0, 1)[0]
    with torch.no_grad():
        assert torch.equal(loaded(x), trainer.G_A.eval()(x))
    for name in ("generator", "G_B"):  # the checkpoint's generators are rtgan models too
        models.load(tmp_path / "checkpoint" / name)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "30x30"], "size 30x30"),
        (["--size", "16x16"], "PatchGAN"),
        (["--gan-mode", "wgan"], "gan_mode must be one of"),
        (["--netG", "resnet_5blocks"], "netG must be one of"),
        (["--lambda-A", "-1"], "lambda_A must be >= 0"),
        (["--steps", "0"], "steps must be positive"),
        (["--n-steps-decay", "9"], "n_steps_decay"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, args, message):
    rc = main(["--out", str(tmp_path / "run"), "--steps", "3", "--no-progress", *args])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # checked before anything is written


def test_cli_trains_a_tiny_run(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--steps", "2", "--size", "32x32", "--count", "2", "--ngf", "4", "--ndf", "4"]
    assert main([*argv, "--netG", "resnet_6blocks", "--no-progress", "--threads", "1"]) == 0
    assert "2 steps" in capsys.readouterr().out
    assert (tmp_path / "generator" / "config.json").is_file()
