"""MUNIT recipe: the official gen_update / dis_update (D frozen in the generator step), the
discriminator's layout, bit-exact resume, the exported model, the command line's errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rtgan import models
from rtgan.errors import ConfigError
from rtgan.models.munit import AdaIN, Conv2dBlock
from rtgan.train.cyclegan import CycleGANTrainConfig, CycleGANTrainer, run_training
from rtgan.train.munit import MsImageDis, MUNITTrainConfig, MUNITTrainer, dis_loss, gen_loss, main, train


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = dict(dim=4, mlp_dim=8, style_dim=4, n_res=1, dis_dim=4, n_layer=2, num_scales=2)


def tiny(out, **kw) -> MUNITTrainConfig:
    options = dict(size=(32, 32), count=4, progress=False, steps=4, **TINY)
    return MUNITTrainConfig(out=str(out), **{**options, **kw})


def _cancelled_biases(net: nn.Module) -> set[str]:
    """Biases of Conv2dBlocks whose instance norm / AdaIN removes them: zero gradient by construction."""
    return {
        f"{name}.conv.bias"
        for name, m in net.named_modules()
        if isinstance(m, Conv2dBlock) and isinstance(m.norm, (nn.InstanceNorm2d, AdaIN))
    }


def test_gen_update_freezes_the_discriminators_and_reaches_every_generator_weight(tmp_path):
    trainer = MUNITTrainer(tiny(tmp_path, recon_x_cyc_w=1.0))
    a, b = trainer.data.batch(0, 1)
    before = {k: v.clone() for d in (trainer.dis_a, trainer.dis_b) for k, v in d.state_dict().items()}
    losses = trainer.gen_update(a, b, torch.Generator().manual_seed(0))
    expected = {f"{k}_{d}" for k in ("adv", "recon_x", "recon_s", "recon_c", "cycrecon_x") for d in "ab"}
    assert set(losses) == expected | {"G"}
    weights = {"adv": 1.0, "recon_x": 10.0, "recon_s": 1.0, "recon_c": 1.0, "cycrecon_x": 1.0}
    total = sum(weights[k.rsplit("_", 1)[0]] * float(v.detach()) for k, v in losses.items() if k != "G")
    assert float(losses["G"].detach()) == pytest.approx(total, rel=1e-6)
    for d in (trainer.dis_a, trainer.dis_b):
        assert all(p.grad is None and p.requires_grad for p in d.parameters())
    after = {k: v for d in (trainer.dis_a, trainer.dis_b) for k, v in d.state_dict().items()}
    assert all(torch.equal(before[k], after[k]) for k in after)
    skip = _cancelled_biases(trainer.model)
    assert skip
    for name, p in trainer.model.named_parameters():
        assert p.grad is not None, name
        assert name in skip or p.grad.abs().sum() > 0, name


def test_dis_update_leaves_the_generators_alone(tmp_path):
    trainer = MUNITTrainer(tiny(tmp_path))
    a, b = trainer.data.batch(0, 1)
    g_before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    d_before = {k: v.clone() for k, v in trainer.dis_a.state_dict().items()}
    losses = trainer.dis_update(a, b, torch.Generator().manual_seed(0))
    assert set(losses) == {"D_a", "D_b"}
    assert all(p.grad is None for p in trainer.model.parameters())
    assert all(torch.equal(g_before[k], v) for k, v in trainer.model.state_dict().items())
    assert not all(torch.equal(d_before[k], v) for k, v in trainer.dis_a.state_dict().items())
    for p in trainer.dis_a.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_discriminator_layout_and_losses_are_the_official():
    d = MsImageDis(3, dim=8, n_layer=4, norm="none", activ="lrelu", num_scales=3, pad="reflect")
    assert sorted(k for k in d.state_dict() if k.startswith("cnns.0."))[:2] == [
        "cnns.0.0.conv.bias",
        "cnns.0.0.conv.weight",
    ]
    assert d.cnns[0][4].weight.shape == (1, 64, 1, 1)  # 8 -> 16 -> 32 -> 64, then the 1x1 score conv
    outs = d(torch.zeros(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [4, 2, 1]
    fake, real = [torch.full((1, 1, 2, 2), 0.5)] * 2, [torch.full((1, 1, 2, 2), 0.25)] * 2
    assert float(dis_loss("lsgan", fake, real)) == pytest.approx(2 * (0.25 + 0.5625))  # summed over scales
    assert float(gen_loss("lsgan", fake)) == pytest.approx(2 * 0.25)


def test_step_lr_policy_is_train_py_s(tmp_path):
    trainer = MUNITTrainer(tiny(tmp_path, step_size=3, lr=1.0))
    assert [trainer.lr_at(s) for s in range(7)] == [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_resume_repeats_an_uninterrupted_run_exactly(tmp_path):
    whole = train(tiny(tmp_path / "whole", save_every=2)).history
    train(tiny(tmp_path / "split", steps=2))
    resumed = train(tiny(tmp_path / "split", save_every=2))
    assert resumed.step == 4 and resumed.history == whole[2:]
    assert (tmp_path / "split" / "samples" / "latest.png").is_file()
    with pytest.raises(ConfigError, match="recon_x_w"):
        train(tiny(tmp_path / "split", recon_x_w=1.0))
    with pytest.raises(ConfigError, match="holds a munit run, not cyclegan"):
        run_training(CycleGANTrainer, CycleGANTrainConfig(out=str(tmp_path / "split"), size=(32, 32), count=4))


def test_saved_model_loads_and_translates_as_the_trainer(tmp_path):
    trainer = train(tiny(tmp_path, steps=1))
    loaded = models.load(tmp_path / "generator")
    assert loaded.config == trainer.model.config and loaded.config.a2b
    x, style = trainer.data.batch(0, 1)[0], torch.randn(1, 4)
    with torch.no_grad():
        ours = trainer.gen_b.decode(trainer.gen_a.enc_content(x), style[:, :, None, None])
        assert torch.equal(loaded(x, style), ours)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "36x36"], "size 36x36"),
        (["--size", "8x8", "--n-downsample", "1"], "style encoder"),
        (["--size", "32x32"], "3 scales of 4 stride-2 convs"),
        (["--gan-type", "wgan"], "gan_type must be one of"),
        (["--dis-norm", "bn"], "dis_norm must be one of"),
        (["--recon-x-w", "-1"], "recon_x_w must be >= 0"),
        (["--beta2", "1"], "beta2 must be in [0, 1)"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, args, message):
    rc = main(["--out", str(tmp_path / "run"), "--steps", "3", "--no-progress", *args])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_trains_a_tiny_run(tmp_path, capsys):
    options = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    argv = ["--out", str(tmp_path), "--steps", "2", "--size", "32x32", "--count", "2", "--no-progress", *options]
    assert main(argv) == 0
    assert "2 steps" in capsys.readouterr().out
    assert (tmp_path / "generator" / "config.json").is_file()
