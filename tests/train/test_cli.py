"""`python -m rtgan.train` and its sub-commands: one convention, every argument checked before
PyTorch loads, the shipped models' recipes, and the traps of resuming, presets and stopping."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_train import config

from rtgan import weights
from rtgan.errors import CheckpointError, ConfigError
from rtgan.train import DiscriminatorConfig, TrainConfig, Trainer, train
from rtgan.train import __main__ as train_main
from rtgan.train.options import OPERATIONAL, check, command_line, notices, parse
from rtgan.train.recipes import RECIPES

ROOT = Path(__file__).parents[2]
TINY = ["--size", "32x32", "--count", "6", "--batch-size", "2", "--ndf", "4", "--n-layers-D", "2", "--device", "cpu"]
TINY_P2PHD = ["--preset", "landscape-pix2pixhd", "--set", "ngf=4", "n_downsample_global=2", "n_blocks_global=1", *TINY]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, **kw)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--preset", "landscape-spade", "--bogus"], "unrecognized arguments: --bogus"),
        (["--arch", "spdae"], "unknown architecture 'spdae' (did you mean 'spade'?)"),
        (["--recipe", "landscape-spad"], "did you mean 'landscape-spade'?"),
        (["--preset", "landscape-spade", "--data", "foldr"], "did you mean 'folder'?"),
        (["--preset", "landscape-spade", "--device", "cdua"], "did you mean 'cuda'?"),
        (["--preset", "landscape-spade", "--data", "folder", "--root", "/no/such/dir"], "ROOT/labels/"),
        (["--preset", "landscape-spade", "--init-from", "landscape-asapnet"], "this run trains spade"),
    ],
)
def test_a_wrong_argument_is_one_line_before_torch_loads(args, says, tmp_path):
    # `python -m rtgan.train ARGS`, reporting afterwards on stdout whether PyTorch had been imported:
    # what made the error quick is that nothing heavy loads before it (no wall clock: CI may be loaded)
    probe = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_module('rtgan.train', run_name='__main__', alter_sys=True)\n"
        "finally:\n"
        "    print('torch loaded' if 'torch' in sys.modules else 'torch-free')\n"
    )
    run = _run(["-c", probe, "--out", str(tmp_path / "run"), *args])
    assert run.returncode == 2 and says in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.strip().splitlines()[-1].startswith("python -m rtgan.train")
    assert run.stdout.strip().splitlines()[-1] == "torch-free", f"PyTorch was imported before reporting {args}"
    assert not (tmp_path / "run").exists()


_NO_TORCH = textwrap.dedent(
    """
    import runpy, sys
    for module, argv in {cases!r}:
        sys.argv = [module, *argv]
        try:
            if module.endswith(".py"):  # a tool of this repository, run as `python tools/NAME.py`
                runpy.run_path(module, run_name="__main__")
            else:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            assert e.code == 2, (module, e.code)
        assert "torch" not in sys.modules, module
    print("torch-free")
    """
)


def test_commands_check_their_arguments_before_importing_torch(tmp_path):
    nope = str(tmp_path / "nope")
    cases = [
        ("rtgan.train", ["--out", nope, "--arch", "spdae"]),
        ("rtgan.train", ["--out", nope, "--preset", "landscape-spade", "--data", "folder", "--root", nope]),
        ("tools/carry.py", ["--run", nope, "--out", nope + "2"]),
        ("tools/add_noise.py", ["--run", nope, "--noise_nc", "4"]),
        ("tools/resize_upsampling.py", ["--run", nope, "--mode", "bilinaer"]),
        ("rtgan.train.bundle", ["--run", nope, "--out", nope + "3"]),
        ("rtgan.data.landscapes", ["--out", nope, "--size", "32by32"]),
    ]
    run = _run(["-c", _NO_TORCH.format(cases=cases)])
    assert run.returncode == 0 and "torch-free" in run.stdout, run.stderr
    assert "not a training run (no such folder)" in run.stderr and "did you mean 'bilinear'" in run.stderr


def test_sub_commands_name_a_wrong_run_in_one_line(tmp_path, capsys):
    from rtgan.train import bundle, quality
    from tools import add_noise, carry, resize_upsampling

    nope = str(tmp_path / "nope")
    calls = {
        carry: ["--run", nope, "--out", str(tmp_path / "c")],
        add_noise: ["--run", nope],
        resize_upsampling: ["--run", nope],
        bundle: ["--run", nope, "--out", str(tmp_path / "b")],
    }
    for module, argv in calls.items():
        assert module.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--run {nope}: not a training run" in err, err
    assert bundle.main(["--out", str(tmp_path / "b"), "--refresh_quality", "--quality", nope]) == 2
    assert f"--quality {nope}: no such file" in capsys.readouterr().err  # a card would silently lack its scores
    assert quality.main(["--models", "landscape-asapnt", "--out", str(tmp_path / "q")]) == 2
    assert "did you mean 'landscape-asapnet'?" in capsys.readouterr().err and not (tmp_path / "q").exists()


def test_underscore_spellings_still_work():
    hyphens = parse(["--out", "o", "--preset", "landscape-spade", "--batch-size", "3", "--n-layers-D", "2"])
    underscores = parse(["--out", "o", "--preset", "landscape-spade", "--batch_size", "3", "--n_layers_D", "2"])
    assert vars(hyphens) == vars(underscores) and underscores.batch_size == 3 and underscores.n_layers_D == 2
    old = parse(["--out", "o", "--arch", "spade", "--no_TTUR", "--lambda_l1", "5", "--init_from", "x", "--num_D", "1"])
    assert old.no_TTUR and old.lambda_l1 == 5 and old.init_from == "x" and old.num_D == 1


def _trained_with(name: str) -> dict:
    """The train config of a shipped model's run: the carried run's, else the one its weights record."""
    carried = ROOT / "training" / name / "checkpoint" / "train_state.json"
    if carried.is_file():
        return json.loads(carried.read_text())["train_config"]
    return json.loads((weights.path(name) / "config.json").read_text())["trained"]["train_config"]


def _recipe_fields(cfg: dict) -> dict:
    """What a run learns from: everything but how it runs and how long."""
    cfg = json.loads(json.dumps(TrainConfig.from_dict(cfg).to_dict()))
    return {k: v for k, v in cfg.items() if k not in OPERATIONAL + ("steps",)}


@pytest.mark.parametrize("name", weights.BUNDLED)
def test_recipe_is_what_the_shipped_model_was_trained_with(name):
    assert set(RECIPES) == set(weights.BUNDLED)
    saved = _trained_with(name)
    assert _recipe_fields(check(parse(["--recipe", name, "--out", "o"]))) == _recipe_fields(saved)
    # a plain preset is not: that is why --recipe exists
    data = ["--data", saved["data"]] if saved["data"] != "landscapes" else []  # the sketch model's
    assert _recipe_fields(check(parse(["--preset", name, "--out", "o", *data]))) != _recipe_fields(saved)
    assert check(parse(["--recipe", name, "--out", "o", "--ndf", "16"]))["discriminator"]["ndf"] == 16  # flags win


@pytest.mark.parametrize("name", weights.BUNDLED)
@pytest.mark.parametrize("by", ["preset", "arch"])
def test_command_line_trains_the_run_it_was_written_for(name, by):
    saved = _trained_with(name)
    cmd = command_line(saved, name if by == "preset" else None, out="runs/x", steps=123, threads=1)
    words = shlex.split(cmd)
    assert words[:3] == ["python", "-m", "rtgan.train"] and ("--arch" in words) == (by == "arch")
    again = check(parse(words[3:]))
    assert _recipe_fields(again) == _recipe_fields(saved) and again["steps"] == 123 and "--threads" in words


def test_architectures_named_without_torch_are_the_registry():
    from rtgan.data.folders import DATASETS
    from rtgan.data.layouts import LAYOUTS
    from rtgan.models import ARCHITECTURES, build, make_config
    from rtgan.train.options import ARCHS, IMAGE_ARCHS, INFERENCE_ONLY

    # rtgan.train trains the label-map generators (their modules prepare label maps) and the paired
    # image-to-image ones (a module whose only input is an image), less those it names as inference-only
    label_map = {arch for arch, (_, module) in ARCHITECTURES.items() if hasattr(module, "prepare")}
    assert set(INFERENCE_ONLY) <= label_map, "INFERENCE_ONLY names an architecture that is not a label-map one"
    label_map -= set(INFERENCE_ONLY)
    inputs = lambda arch: [i.kind for i in build(make_config(arch)).signature().inputs]  # noqa: E731
    image = {arch for arch in ARCHITECTURES if arch not in label_map and inputs(arch) == ["image"]}
    assert set(ARCHS) == label_map | image and set(IMAGE_ARCHS) == image and list(LAYOUTS) == list(DATASETS)


def test_a_shipped_models_preset_says_it_starts_from_random_weights(tmp_path):
    out = str(tmp_path / "run")
    args = parse(["--preset", "landscape-asapnet", "--out", out])
    said = notices(args, check(args))
    assert said[0] == "starting from random weights; to fine-tune the shipped model add --init-from landscape-asapnet"
    assert "ndf=32 (now 64)" in said[1] and "--recipe landscape-asapnet sets them" in said[1]
    args = parse(["--recipe", "landscape-asapnet", "--out", out])
    assert notices(args, check(args)) == said[:1]
    args = parse(["--recipe", "landscape-asapnet", "--init-from", "landscape-asapnet", "--out", out])
    assert notices(args, check(args)) == []
    args = parse(["--preset", "spade-coco", "--out", out])
    assert notices(args, check(args)) == []  # not a shipped model: random weights are what it means
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint" / "train_state.json").write_text("{}")
    args = parse(["--preset", "landscape-asapnet", "--out", out])
    assert notices(args, check(args)) == []  # resuming: the run's own weights


def test_main_says_so_and_resolves_the_device_after_parsing(tmp_path, monkeypatch, capsys):
    import rtgan.train.trainer as trainer_module

    got = {}

    def fake_train(cfg):
        got["cfg"] = cfg
        return type("T", (), {"interrupted": None})()

    monkeypatch.setattr(trainer_module, "train", fake_train)
    assert train_main.main(["--preset", "landscape-asapnet", "--out", str(tmp_path / "r"), "--steps", "5"]) == 0
    assert "add --init-from landscape-asapnet" in capsys.readouterr().out
    import torch

    assert got["cfg"].device == ("cuda" if torch.cuda.is_available() else "cpu") and got["cfg"].steps == 5


def test_init_from_takes_a_bundled_models_name(tmp_path):
    args = parse(["--recipe", "landscape-asapnet", "--init-from", "landscape-asapnet", "--out", str(tmp_path)])
    cfg = check(args)
    assert cfg["init_from"] == "landscape-asapnet"
    trainer = Trainer(TrainConfig.from_dict({**cfg, "device": "cpu"}))
    trainer.init_from(cfg["init_from"])
    shipped = json.loads((weights.path("landscape-asapnet") / "config.json").read_text())
    assert trainer.step == shipped["trained"]["steps"] > 0
    assert trainer.initialized_from["model"] == "landscape-asapnet"  # the card's command names it so


def test_resume_with_a_changed_flag_names_it_before_loading(tmp_path, monkeypatch):
    import rtgan.train.trainer as trainer_module

    train(config("pix2pixhd", tmp_path, steps=1, save_every=1))

    def no_loading(*a, **k):
        raise AssertionError("loaded the checkpoint before comparing the flags")

    monkeypatch.setattr(trainer_module, "load_checkpoint", no_loading)
    wider = config("pix2pixhd", tmp_path, steps=2, discriminator=DiscriminatorConfig(ndf=8, n_layers_D=2, num_D=2))
    with pytest.raises(ConfigError) as e:
        train(wider)
    want = f"{tmp_path} was started with ndf=4 (now 8): use the same flags to resume, or a new --out"
    assert str(e.value) == want
    model = config("pix2pixhd", tmp_path).model
    with pytest.raises(ConfigError, match=r"ngf=4 \(now 8\), noise_nc=unset \(now 2\): use the same flags"):
        train(config("pix2pixhd", tmp_path, steps=2, model={**model, "ngf": 8, "noise_nc": 2}))


def test_weights_that_do_not_fit_are_one_line(tmp_path):
    from rtgan.train.checkpoint import load_checkpoint

    first = train(config("pix2pixhd", tmp_path, steps=1, save_every=1))
    other = Trainer(config("pix2pixhd", tmp_path / "other", discriminator=DiscriminatorConfig(ndf=8, n_layers_D=2)))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "checkpoint", first.generator, other.discriminator, {})
    assert "\n" not in str(e.value) and "saved discriminator does not fit" in str(e.value) and "more" in str(e.value)


def test_a_dataset_folder_trains_and_a_missing_one_is_named(tmp_path):
    from rtgan.data.landscapes import write_folder

    write_folder(tmp_path / "data", 4, 32, 32, progress=False)
    run = train(config("pix2pixhd", tmp_path / "run", steps=1, data="folder", root=str(tmp_path / "data")))
    assert run.step == 1 and run.dataset[0]["labels"].shape == (32, 32)
    with pytest.raises(ConfigError, match=r"nope does not exist; the folder layout is ROOT/labels/ .*ROOT/images/"):
        train(config("pix2pixhd", tmp_path / "run2", data="folder", root=str(tmp_path / "nope")))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_run_saves_and_exits_as_stopped(sig, tmp_path):
    cmd = [sys.executable, "-m", "rtgan.train", *TINY_P2PHD, "--steps", "100000", "--log-every", "1"]
    cmd += ["--save-every", "100000", "--sample-every", "100000", "--no-progress", "--threads", "1"]
    cmd += ["--out", str(tmp_path)]
    # a shell's background job ignores SIGINT, and the child would inherit that: restore the default
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=restore)  # fmt: skip
    log, deadline = tmp_path / "losses.jsonl", time.monotonic() + 120
    while not log.is_file() or len(log.read_text().splitlines()) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert "interrupted: saved" in out, err
    assert json.loads((tmp_path / "checkpoint" / "train_state.json").read_text())["step"] >= 2
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and err.strip().splitlines()[-1] == "python -m rtgan.train: interrupted", err
    else:  # as killed by it (the shell shows 143): what benchmarks/gpu/train.py and schedulers expect
        assert proc.returncode == -signal.SIGTERM, err


def test_training_readme_commands_resume_the_carried_runs():
    from rtgan.train.trainer import check_resumable

    text = (ROOT / "training" / "README.md").read_text()
    commands = [line for line in text.splitlines() if line.startswith("python -m rtgan.train ")]
    carried = [n for n in weights.BUNDLED if (ROOT / "training" / n).is_dir()]
    assert len(carried) >= 3 and all(any(f"--out runs/{n} " in c for c in commands) for n in carried)
    # a shipped model that is not carried goes on from its shipped weights
    for name in set(weights.BUNDLED) - set(carried):
        assert any(f"--init-from {name}" in c for c in commands), name
    for cmd in (c for c in commands if "--init-from" not in c):
        cfg = check(parse(shlex.split(cmd)[3:]))
        name = Path(cfg["out"]).name
        cfg = {**cfg, "out": str(ROOT / "training" / name), "device": "cpu"}  # where `cp -r` takes them from
        meta = check_resumable(TrainConfig.from_dict(cfg))  # raises on any flag the run was not trained with
        assert meta["step"] > 0 and cfg["steps"] > meta["step"]
