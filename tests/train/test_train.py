"""Training: one step per architecture, exact resume, checkpoint errors, VGG loss, DDP with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rtgan.data.landscapes import LABEL_IDS
from rtgan.errors import CheckpointError, ConfigError
from rtgan.train import DiscriminatorConfig, TrainConfig, Trainer, train
from rtgan.train.losses import VGGLoss

_LABELS = dict(label_nc=len(LABEL_IDS), label_ids=list(LABEL_IDS))
# tiny models on small landscapes; SPADE with its VAE encoder so the KLD path runs too (the
# encoder works at 256x256 only, as the official one)
MODELS = {
    "spade-vae": (
        "spade",
        dict(
            _LABELS,
            no_instance=True,
            ngf=2,
            spade_hidden=4,
            crop_size=256,
            use_vae=True,
            z_dim=8,
            num_upsampling_layers="normal",
            norm_G="spectralspadeinstance3x3",
        ),
    ),
    "asapnet": (
        "asapnet",
        dict(
            _LABELS,
            no_instance_edge=True,
            lr_instance=False,
            crop_size=64,
            learned_ds_factor=4,
            lr_width=4,
            lr_max_width=8,
            lr_depth=2,
            hr_width=8,
            hr_depth=3,
            noise_nc=2,  # octave noise drawn fresh each step
        ),
    ),
    "pix2pixhd": ("pix2pixhd", dict(_LABELS, no_instance=True, ngf=4, n_downsample_global=2, n_blocks_global=1)),
}


def config(name: str, out: Path, **kw) -> TrainConfig:
    arch, model = MODELS[name]
    size = {"spade": (256, 256), "asapnet": (64, 64), "pix2pixhd": (32, 32)}[arch]
    base = dict(
        arch=arch,
        model=model,
        out=str(out),
        size=size,
        count=6,
        batch_size=2,
        steps=2,
        discriminator=DiscriminatorConfig(ndf=4, n_layers_D=2, num_D=2),
        save_every=1000,
        sample_every=1000,
        log_every=1,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_one_step_changes_weights_with_finite_losses(name, tmp_path):
    trainer = Trainer(config(name, tmp_path))
    g0, d0 = _snapshot(trainer.generator), _snapshot(trainer.discriminator)
    batch = next(iter(trainer.batches()))
    losses = trainer.train_step(batch)
    expected = {"G_gan", "G_feat", "D"} | ({"G_kld"} if name == "spade-vae" else set())
    assert set(losses) == expected
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    changed = lambda before, m: [k for k, v in m.state_dict().items() if not torch.equal(v, before[k])]  # noqa: E731
    g_changed, d_changed = changed(g0, trainer.generator), changed(d0, trainer.discriminator)
    assert any(k.startswith("encoder.") for k in g_changed) == (name == "spade-vae")
    assert len(g_changed) > len(g0) // 3 and len(d_changed) > len(d0) // 3


def test_resume_repeats_uninterrupted_training(tmp_path):
    straight = train(config("spade-vae", tmp_path / "a", steps=3))
    train(config("spade-vae", tmp_path / "b", steps=2, save_every=2))
    resumed = train(config("spade-vae", tmp_path / "b", steps=3, save_every=2))
    assert resumed.step == 3
    for mod in ("generator", "discriminator"):
        a, b = getattr(straight, mod).state_dict(), getattr(resumed, mod).state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{mod}.{k} differs after resume"
    for oa, ob in ((straight.opt_g, resumed.opt_g), (straight.opt_d, resumed.opt_d)):
        sa, sb = oa.state_dict()["state"], ob.state_dict()["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert straight.history[2:] == resumed.history  # the same losses for step 3


def test_run_leaves_checkpoint_samples_and_logs(tmp_path):
    from rtgan.models import load

    train(config("asapnet", tmp_path, steps=2, save_every=2, sample_every=2))
    assert load(tmp_path / "checkpoint" / "generator").config.label_ids == LABEL_IDS
    lines = [json.loads(s) for s in (tmp_path / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    from PIL import Image

    grid = Image.open(tmp_path / "samples" / "latest.png")
    assert grid.size == (3 * 64, 4 * 64)  # labels | real | generated, four rows


def test_resume_refuses_a_different_run(tmp_path):
    train(config("pix2pixhd", tmp_path, steps=1, save_every=1))
    with pytest.raises(ConfigError, match="lr"):
        train(config("pix2pixhd", tmp_path, steps=2, lr=1e-3))


def test_loss_weights_may_change_on_resume_and_are_recorded(tmp_path):
    train(config("pix2pixhd", tmp_path, steps=1, save_every=1))
    resumed = train(config("pix2pixhd", tmp_path, steps=2, save_every=1, lambda_l1=20.0))
    assert resumed.step == 2 and resumed.history[-1]["G_l1"] > 0
    record = json.loads((tmp_path / "recipe_changes.jsonl").read_text())
    assert record == {"step": 1, "changed": {"lambda_l1": [0.0, 20.0]}}


def test_corrupted_checkpoint_is_reported(tmp_path):
    train(config("pix2pixhd", tmp_path, steps=1, save_every=1))
    state = tmp_path / "checkpoint" / "train_state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="unreadable"):
        train(config("pix2pixhd", tmp_path, steps=2))


def test_amp_needs_cuda(tmp_path):
    with pytest.raises(ConfigError, match="CUDA"):
        Trainer(config("pix2pixhd", tmp_path, amp=True))


def _vgg_state(seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    widths = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
    state, cin, i = {}, 3, 0
    for v in widths:
        if v == "M":
            i += 1
            continue
        state[f"features.{i}.weight"] = torch.randn(v, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        state[f"features.{i}.bias"] = torch.zeros(v)
        cin, i = v, i + 2
    return state


def test_vgg_loss_reads_torchvision_layout(tmp_path):
    path = tmp_path / "vgg19.pth"
    torch.save(_vgg_state(), path)
    vgg = VGGLoss(path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(vgg(x, x)) == 0.0
    assert float(vgg(x, -x)) > 0
    bad = _vgg_state()
    del bad["features.28.weight"]
    torch.save(bad, path)
    with pytest.raises(CheckpointError, match="features.28.weight"):
        VGGLoss(path)
    with pytest.raises(CheckpointError, match="not found"):
        VGGLoss(tmp_path / "missing.pth")


def test_texture_loss_joins_the_generator_loss(tmp_path):
    trainer = Trainer(config("asapnet", tmp_path, lambda_texture=5.0))
    losses = trainer.train_step(next(iter(trainer.batches())))
    assert losses["G_tex"] > 0 and torch.isfinite(torch.tensor(losses["G_tex"]))


def test_vgg_loss_joins_the_generator_loss(tmp_path):
    path = tmp_path / "vgg19.pth"
    torch.save(_vgg_state(), path)
    trainer = Trainer(config("pix2pixhd", tmp_path, vgg_weights=str(path)))
    losses = trainer.train_step(next(iter(trainer.batches())))
    assert losses["G_vgg"] > 0


_DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, torch
    sys.path.insert(0, {tests!r})
    from test_train import config
    from rtgan.train import Trainer
    torch.set_num_threads(1)
    t = Trainer(config("asapnet", {out!r}, steps=2))
    assert t.world == 2
    t.fit()
    total = sum(float(p.double().sum()) for p in t.generator.parameters())
    json.dump({{"rank": t.rank, "total": total, "step": t.step}}, open({out!r} + f"/rank{{t.rank}}.json", "w"))
    """
)


def test_ddp_two_processes_with_gloo(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["step"] for r in ranks] == [2, 2]
    assert ranks[0]["total"] == pytest.approx(ranks[1]["total"], rel=0, abs=1e-9)  # DDP kept them in sync
    assert (tmp_path / "checkpoint" / "train_state.json").is_file()  # rank 0 wrote it


_SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_train import config
    from rtgan.train import train
    torch.set_num_threads(1)
    train(config("asapnet", {out!r}, steps=100000, log_every=1))
    """
)


def test_sigterm_saves_a_checkpoint_like_ctrl_c(tmp_path):
    import signal
    import time

    script = tmp_path / "term.py"
    script.write_text(_SIGTERM_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "losses.jsonl").is_file() or len((tmp_path / "losses.jsonl").read_text().splitlines()) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "interrupted: saved" in out
    state = json.loads((tmp_path / "checkpoint" / "train_state.json").read_text())
    assert state["step"] >= 2


def test_add_noise_is_an_exact_warm_start_that_resumes(tmp_path):
    from rtgan.models import io as model_io
    from tools.add_noise import add_noise_channels

    train(config("pix2pixhd", tmp_path, steps=1, save_every=1))
    before = model_io.load(tmp_path / "checkpoint" / "generator")
    assert add_noise_channels(tmp_path, 3) == 1
    after = model_io.load(tmp_path / "checkpoint" / "generator")
    assert after.config.noise_nc == 3
    labels = torch.tensor(LABEL_IDS)[torch.randint(0, len(LABEL_IDS), (2, 32, 32))]
    with torch.no_grad():  # zero weights on the new channels: the same painting, whatever the noise
        a = before(before.prepare(labels))
        b = after(after.prepare(labels), noise=torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    record = json.loads((tmp_path / "recipe_changes.jsonl").read_text())
    assert record == {"step": 1, "changed": {"noise_nc": [0, 3]}}
    arch, model = MODELS["pix2pixhd"]
    resumed = train(config("pix2pixhd", tmp_path, steps=3, model={**model, "noise_nc": 3}))
    assert resumed.step == 3 and resumed.generator.model[1].weight[:, -3:].abs().sum() > 0  # noise weights learn
    with pytest.raises(ConfigError, match="noise_nc=3"):
        add_noise_channels(tmp_path, 3)


def test_add_decoder_noise_to_a_pix2pixhd_run_is_an_exact_warm_start(tmp_path):
    from rtgan.models import io as model_io
    from tools.add_noise import add_noise_channels

    arch, model = MODELS["pix2pixhd"]
    noisy = {**model, "noise_nc": 2}
    train(config("pix2pixhd", tmp_path, steps=1, save_every=1, model=noisy))
    before = model_io.load(tmp_path / "checkpoint" / "generator")
    assert add_noise_channels(tmp_path, 2, decoder=True) == 1
    after = model_io.load(tmp_path / "checkpoint" / "generator")
    assert after.config.noise_decoder and len(after.noise_decoder) == model["n_downsample_global"]
    labels = torch.tensor(LABEL_IDS)[torch.randint(0, len(LABEL_IDS), (2, 32, 32))]
    noise = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            after(after.prepare(labels), noise=noise), before(before.prepare(labels), noise=noise)
        )
    record = json.loads((tmp_path / "recipe_changes.jsonl").read_text())
    assert record == {"step": 1, "changed": {"noise_decoder": [False, True]}}
    # new parameters: Adam restarts (recorded), the decoder-noise weights learn
    resumed = train(config("pix2pixhd", tmp_path, steps=3, model={**noisy, "noise_decoder": True}))
    assert resumed.step == 3 and resumed.optimizer_restarts == [1]
    assert all(conv.weight.abs().sum() > 0 for conv in resumed.generator.noise_decoder)
    with pytest.raises(ConfigError, match="decoder noise"):
        add_noise_channels(tmp_path, 2, decoder=True)
    # moving the decoder-noise weights off zero, where the texture losses barely pull them
    learned = [conv.weight.detach().clone() for conv in resumed.generator.noise_decoder]
    assert add_noise_channels(tmp_path, 2, decoder=True, init_std=0.05) == 3
    kicked = model_io.load(tmp_path / "checkpoint" / "generator").noise_decoder
    moved = torch.cat([(k.weight - w).flatten() for k, w in zip(kicked, learned)])
    assert 0.03 < float(moved.std()) < 0.07
    record = json.loads((tmp_path / "recipe_changes.jsonl").read_text().splitlines()[-1])
    assert record == {"step": 3, "changed": {"noise_decoder_init_std": [0, 0.05]}}


def test_resize_upsampling_keeps_all_but_the_upsampling_convs_of_a_pix2pixhd_run(tmp_path):
    from rtgan.models import io as model_io
    from rtgan.models.pix2pixhd import ResizeConv
    from rtgan.train.checkpoint import read_state
    from tools.resize_upsampling import resize_upsampling

    arch, model = MODELS["pix2pixhd"]
    noisy = {**model, "noise_nc": 2, "noise_decoder": True}
    train(config("pix2pixhd", tmp_path, steps=1, save_every=1, model=noisy))
    before = model_io.load(tmp_path / "checkpoint" / "generator")
    assert resize_upsampling(tmp_path, "nearest") == 1
    after = model_io.load(tmp_path / "checkpoint" / "generator")
    assert after.config == before.config.replace(upsample="nearest")
    old, new = before.state_dict(), after.state_dict()
    ups = [i for i, m in enumerate(after.model) if isinstance(m, ResizeConv)]
    assert len(ups) == model["n_downsample_global"]
    fresh = {f"model.{i}.conv.{p}" for i in ups for p in ("weight", "bias")}
    assert set(new) - set(old) == fresh  # the only new weights, freshly initialised (not zero)
    assert all(new[k].abs().sum() > 0 for k in fresh if k.endswith("weight"))
    assert set(old) - set(new) == {f"model.{i}.{p}" for i in ups for p in ("weight", "bias")}
    for k in set(old) & set(new):  # encoder, residual blocks, output layer, decoder noise: kept
        assert torch.equal(old[k], new[k]), k
    record = json.loads((tmp_path / "recipe_changes.jsonl").read_text())
    assert record == {"step": 1, "changed": {"upsample": ["transpose", "nearest"]}}
    # new parameters: Adam restarts (recorded), the new convs learn
    resumed = train(config("pix2pixhd", tmp_path, steps=3, model={**noisy, "upsample": "nearest"}))
    assert resumed.step == 3 and resumed.optimizer_restarts == [1]
    assert not torch.equal(resumed.generator.model[ups[0]].conv.weight.detach(), new[f"model.{ups[0]}.conv.weight"])
    # nearest -> bilinear: the same weights and Adam state, only the resizing changes
    trained = model_io.load(tmp_path / "checkpoint" / "generator").state_dict()
    moments = {k: v for k, v in read_state(tmp_path / "checkpoint")[1].items() if k.startswith("opt_G.")}
    assert moments and resize_upsampling(tmp_path, "bilinear") == 3
    smooth = model_io.load(tmp_path / "checkpoint" / "generator")
    assert smooth.config.upsample == "bilinear" and {m.mode for m in smooth.modules() if isinstance(m, ResizeConv)} == {
        "bilinear"
    }
    assert all(torch.equal(v, trained[k]) for k, v in smooth.state_dict().items())
    kept = read_state(tmp_path / "checkpoint")[1]
    assert all(torch.equal(kept[k], v) for k, v in moments.items())
    record = json.loads((tmp_path / "recipe_changes.jsonl").read_text().splitlines()[-1])
    assert record == {"step": 3, "changed": {"upsample": ["nearest", "bilinear"]}}
    resumed = train(config("pix2pixhd", tmp_path, steps=4, model={**noisy, "upsample": "bilinear"}))
    assert resumed.step == 4 and resumed.optimizer_restarts == [1]
    for mode in ("bilinear", "cubic"):
        with pytest.raises(ConfigError, match="'nearest' or 'bilinear' resize-convs"):
            resize_upsampling(tmp_path, mode)


def test_carried_run_resumes_with_weights_intact_and_fresh_optimizers(tmp_path):
    from tools.carry import carry

    run = train(config("spade-vae", tmp_path / "run", steps=2, save_every=2))
    assert carry(tmp_path / "run", tmp_path / "carried") == 2
    carried = tmp_path / "carried"
    assert (carried / "losses.jsonl").read_text() == (tmp_path / "run" / "losses.jsonl").read_text()
    full = (tmp_path / "run" / "checkpoint" / "train_state.safetensors").stat().st_size
    assert (carried / "checkpoint" / "train_state.safetensors").stat().st_size < full / 2
    resumed = Trainer(config("spade-vae", carried, steps=3))
    assert resumed.resume() and resumed.step == 2
    for mod in ("generator", "discriminator"):
        a, b = getattr(run, mod).state_dict(), getattr(resumed, mod).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), mod
    assert resumed.opt_g.state_dict()["state"] == {}  # Adam starts over
    resumed.fit()
    assert resumed.step == 3 and all(torch.isfinite(torch.tensor(v)) for v in resumed.history[-1].values())
    resumed.save()  # the restart is remembered for the model card
    meta = json.loads((carried / "checkpoint" / "train_state.json").read_text())
    assert meta["optimizer_restarts"] == [2] and "opt_G" in meta["optimizers"]
    from rtgan.train.bundle import bundle

    card = (bundle(carried, tmp_path / "landscape-spade") / "MODEL_CARD.md").read_text()
    assert "| optimizer restarts | at step 2 " in card


@pytest.mark.parametrize("variant", ["asap-tile16", "asap-tile64-tent4-edges-in-mlp", "spade-normal-instance3"])
def test_widening_to_noise_inputs_paints_the_same(variant):
    from rtgan.models import build
    from rtgan.train.widen import widened_state

    from helpers import inputs, make

    old, size = make(variant)
    new = build(old.config.replace(noise_nc=3)).eval()
    new.load_state_dict(widened_state(old, new.config))
    _, _, sem = inputs(old, size)
    with torch.no_grad():
        a = old(sem)
        b = new(sem, noise=torch.randn(len(sem), 3, *size))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="only noise_nc"):
        widened_state(old, old.config.replace(noise_nc=3, label_nc=old.config.label_nc + 1))


def test_init_from_a_saved_generator_widens_it_and_continues_its_steps(tmp_path):
    from rtgan.models import io as model_io
    from rtgan.train.bundle import bundle

    arch, model = MODELS["asapnet"]
    plain = {**model, "noise_nc": 0}
    source = train(config("asapnet", tmp_path / "src", steps=2, save_every=2, model=plain))
    shipped = tmp_path / "shipped"
    model_io.save(source.generator, shipped, extra={"trained": {"steps": 2, "elapsed_s": 5.0}})

    trainer = Trainer(config("asapnet", tmp_path / "run", steps=3, init_from=str(shipped)))
    assert not trainer.resume()
    trainer.init_from(str(shipped))
    assert trainer.step == 2 and trainer.elapsed == 5.0
    labels = torch.tensor(LABEL_IDS)[torch.randint(0, len(LABEL_IDS), (2, 64, 64))]
    g = trainer.generator.eval()
    with torch.no_grad():  # the same painting, whatever the noise
        want = source.generator.eval()(source.generator.prepare(labels))
        torch.testing.assert_close(g(g.prepare(labels), noise=torch.randn(2, 2, 64, 64)), want, atol=1e-5, rtol=0)

    run = train(config("asapnet", tmp_path / "run", steps=3, save_every=3, init_from=str(shipped)))
    assert run.step == 3 and len(run.history) == 1
    meta = json.loads((tmp_path / "run" / "checkpoint" / "train_state.json").read_text())
    assert meta["initialized_from"]["step"] == 2 and meta["initialized_from"]["noise_nc"] == [0, 2]
    card = (bundle(tmp_path / "run", tmp_path / "landscape-asapnet") / "MODEL_CARD.md").read_text()
    assert f"| initialized from | `{shipped}` at step 2" in card and "noise_nc 0 → 2" in card
    assert f"--init-from {shipped}" in card  # the reproduce command starts where the run did
