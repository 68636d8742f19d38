"""The commands as a user meets them: export never deletes what it did not write, every bundled
model opens by name, bad arguments fail before any work with the fix in the message, the cache
can be listed, cleaned and repairs itself, and generate paints what the model paints."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rtgan import Engine, InputError, weights
from rtgan.engine import ArtifactError

pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")


def _export_cli(*argv):
    from rtgan.export.__main__ import main

    return main(list(argv))


def test_export_refuses_a_folder_it_did_not_write(tmp_path, capsys, monkeypatch):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "thesis.txt").write_text("important")
    assert _export_cli("--model", "landscape-asapnet", "--size", "64x64", "--out", str(victim)) == 2
    err = capsys.readouterr().err
    assert "not part of an rtgan artifact" in err and "thesis.txt" in err and "--out " in err
    assert (victim / "thesis.txt").read_text() == "important" and (victim / "sub").is_dir()

    monkeypatch.chdir(victim)
    assert _export_cli("--model", "landscape-asapnet", "--size", "64x64", "--out", ".") == 2
    assert "current folder" in capsys.readouterr().err
    assert (victim / "thesis.txt").read_text() == "important"

    # the library refuses too, before any work
    monkeypatch.chdir(tmp_path)
    from rtgan import models
    from rtgan.export import export

    with pytest.raises(ArtifactError, match="not part of an rtgan artifact"):
        export(models.load(weights.path()), height=64, width=64, out=victim, progress=False)


def test_export_replaces_only_its_own_artifact(tmp_path, capsys):
    out = tmp_path / "engine"
    out.mkdir()  # an empty folder is fine
    assert _export_cli("--model", "landscape-asapnet", "--size", "64x64", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "next:" in printed and f"--model {out}" in printed
    assert _export_cli("--model", "landscape-asapnet", "--size", "64x64", "--out", str(out), "--force") == 0
    (out / "notes.txt").write_text("mine")  # now it holds a file the artifact does not list
    assert _export_cli("--model", "landscape-asapnet", "--size", "64x64", "--out", str(out), "--force") == 2
    assert (out / "notes.txt").read_text() == "mine" and (out / "manifest.json").is_file()


@pytest.mark.parametrize("name", weights.BUNDLED)
def test_every_bundled_model_exports_and_generates_by_name(name, tmp_path):
    """Export at the model's own size (no --size: pix2pixHD records it only as its training size)."""
    out = tmp_path / "engine"
    assert _export_cli("--model", name, "--backend", "openvino", "--out", str(out)) == 0
    engine = Engine.load(out)
    assert (engine.height, engine.width) == (256, 256)
    from rtgan.generate import main

    if engine.input_names == ["source"]:  # an image-to-image model: it needs a picture to translate
        assert main(["--model", str(out), "--out", str(tmp_path / "e.png")]) == 2
        return
    assert main(["--model", name, "--out", str(tmp_path / "p.png")]) == 0
    assert main(["--model", str(out), "--out", str(tmp_path / "e.png")]) == 0
    eager, engined = (cv2.imread(str(tmp_path / f))[..., ::-1] for f in ("p.png", "e.png"))
    assert eager.shape == (256, 256, 3)
    if name != "landscape-spade":  # a VAE model draws its style: the two runs differ there by design
        assert np.abs(eager.astype(int) - engined).mean() < 1.0  # the engine paints what the model paints


# One probe per command: the misspelled value must be reported, with its fix, before PyTorch loads.
FAST_FAILURES = [
    ("rtgan.export", ["--preset", "spade-cityscapes", "--backend", "openvnio"], "did you mean 'openvino'"),
    ("rtgan.export", ["--model", "landscap-asapnet"], "did you mean 'landscape-asapnet'"),
    ("rtgan.export", ["--preset", "spade-citiscapes"], "did you mean 'spade-cityscapes'"),
    ("rtgan.export", ["--model", "landscape-asapnet", "--size", "256by256"], "HEIGHTxWIDTH"),
    ("rtgan.export", ["--model", "landscape-asapnet", "--backend", "tensorrt"], "NVIDIA GPU"),
    ("rtgan.export", ["--model", "landscape-asapnet", "--backend", "trt-rtx", "--compute-capability", "SM99"], "SM89"),
    (
        "rtgan.export",
        ["--arch", "pix2pxi", "--size", "256x256"],
        "unknown architecture 'pix2pxi' (did you mean 'pix2pix'?)",
    ),
    ("rtgan.export", ["--preset", "cyclegan-style-monet", "--arch", "munit"], "is a cyclegan preset, not munit"),
    ("rtgan.generate", ["--model", "landscape-asapnt"], "did you mean 'landscape-asapnet'"),
    ("rtgan.generate", ["--labels", "no-such-map.png"], "no such file"),
    ("rtgan", ["lsit"], "invalid choice"),
    ("rtgan.demo", ["--backend", "openvnio"], "did you mean 'openvino'"),
    ("rtgan.demo", ["--window"], "no display found"),
]


@pytest.mark.parametrize("module,argv,message", FAST_FAILURES)
def test_bad_arguments_fail_before_any_work(module, argv, message, tmp_path):
    probe = textwrap.dedent(
        f"""
        import runpy, sys
        sys.argv = [{module!r}] + {argv!r}
        try:
            runpy.run_module({module!r}, run_name="__main__")
        except SystemExit as e:
            code = e.code
        print("torch imported:", "torch" in sys.modules, "exit:", code)
        """
    )
    if "tensorrt" in argv and __import__("rtgan.utils.extras").utils.extras.nvidia_gpu_present():
        pytest.skip("this machine has a GPU")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}  # --window's probe
    r = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env
    )
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert "torch imported: False exit: 2" in r.stdout, r.stdout + r.stderr


def test_missing_extras_are_named_before_work(monkeypatch, capsys):
    from rtgan.utils import extras

    real = extras.has_module
    monkeypatch.setattr(extras, "has_module", lambda m: m != "onnxconverter_common" and real(m))
    assert _export_cli("--model", "landscape-asapnet", "--precision", "fp16", "--backend", "trt-rtx") == 2
    assert "pip install 'rtgan[tensorrt-rtx]'" in capsys.readouterr().err
    monkeypatch.setattr(extras, "has_module", lambda m: m != "openvino" and real(m))
    assert _export_cli("--model", "landscape-asapnet", "--backend", "openvino") == 2
    assert "openvino, which is not installed: pip install 'rtgan[cpu]'" in capsys.readouterr().err


def test_plugins_checker_has_a_help():
    r = subprocess.run([sys.executable, "-m", "rtgan.export.plugins", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage:" in r.stdout and "Traceback" not in r.stderr


def test_corrupted_cache_entry_is_rebuilt(tmp_path):
    from rtgan import models
    from rtgan.export import export

    model = models.load(weights.path())
    out = tmp_path / "cached"
    export(model, height=64, width=64, out=out, progress=False)
    onnx = out / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0x55
    onnx.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        Engine.load(out)
    assert export(model, height=64, width=64, out=out, progress=False) == out  # same key: rebuilt, not reused
    assert Engine.load(out).run(np.full((64, 64), weights_ids()[0])).shape == (64, 64, 3)


def weights_ids():
    return json.loads((weights.path() / "config.json").read_text())["config"]["label_ids"]


def test_cache_lists_and_cleans(tmp_path, capsys):
    from rtgan import cache, models
    from rtgan.export import export

    root = tmp_path / "cache"
    export(models.load(weights.path()), height=64, width=64, out=root / "artifacts" / "a", progress=False)
    (root / "artifacts" / ".b.123.tmp").mkdir()  # left by an interrupted export
    (root / "demo").mkdir()
    (root / "demo" / "index.json").write_text("{}")
    found = cache.entries(root)
    assert [e.path.name for e in found][0] == "a" and found[0].manifest["arch"] == "asapnet"
    assert found[0].bytes == sum(p.stat().st_size for p in (root / "artifacts" / "a").iterdir())
    assert found[1].manifest is None
    n, freed = cache.clean(root)
    assert n == 2 and freed == found[0].bytes
    assert not any((root / "artifacts").iterdir()) and not (root / "demo" / "index.json").exists()


def test_openvino_artifact_holds_the_ir_only(tmp_path):
    from rtgan import models
    from rtgan.export import export

    model = models.load(weights.path())
    ov = export(model, height=64, width=64, backend="openvino", out=tmp_path / "ov", progress=False)
    ort = export(model, height=64, width=64, backend="onnxruntime", out=tmp_path / "ort", progress=False)
    assert not (ov / "model.onnx").exists()
    size = lambda d: sum(p.stat().st_size for p in d.iterdir())  # noqa: E731
    assert size(ov) < 1.2 * size(ort)  # once the weights, not twice
    with pytest.raises(ArtifactError, match="can run on openvino, not 'onnxruntime'"):
        Engine.load(ov, backend="onnxruntime")
    labels = np.full((64, 64), weights_ids()[0])
    assert np.abs(Engine.load(ov).run(labels).astype(int) - Engine.load(ort).run(labels)).max() <= 1


def test_engine_errors_say_how_to_fix(tmp_path):
    from rtgan import models
    from rtgan.export import export

    engine = Engine.load(export(models.load(weights.path()), height=64, width=64, out=tmp_path / "e", progress=False))
    with pytest.raises(InputError, match=r"look like an RGB image"):
        engine.run(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match=r"label id 3 is not one of this model's classes; it takes the ids 156 sky"):
        engine.run(np.full((64, 64), 3))


def test_generate_paints_the_bundled_model_by_default(tmp_path, monkeypatch):
    """No arguments: the bundled default model on a landscape scene, equal to its PyTorch reference."""
    from rtgan import models
    from rtgan.export import reference_image
    from rtgan.generate import main

    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = tmp_path / "out" / "generate"
    labels = cv2.imread(str(out / "labels.png"), cv2.IMREAD_UNCHANGED)
    image = cv2.imread(str(out / "image.png"))[..., ::-1]
    assert set(np.unique(labels)) <= set(weights_ids()) and len(np.unique(labels)) >= 4
    ref = reference_image(models.load(weights.path()), {"labels": labels[None].astype(np.int32)})[0]
    assert np.array_equal(image, ref)
    assert image.std() > 20  # a painting, not the flat grey of random weights


def test_generate_reads_colour_maps_and_folders(tmp_path):
    from rtgan.data import landscapes
    from rtgan.generate import main

    ids = landscapes.layout(3, 64, 64)
    lut = np.zeros((256, 3), np.uint8)
    for i, rgb in landscapes.PALETTE.items():
        lut[i] = rgb
    maps = tmp_path / "maps"
    maps.mkdir()
    cv2.imwrite(str(maps / "ids.png"), ids.astype(np.uint8))
    cv2.imwrite(str(maps / "colours.png"), lut[ids][..., ::-1])
    assert main(["--labels", str(maps), "--out", str(tmp_path / "paintings")]) == 0
    a, b = (cv2.imread(str(tmp_path / "paintings" / f)) for f in ("ids.png", "colours.png"))
    assert a.shape == (64, 64, 3) and np.array_equal(a, b)  # the same map, written two ways
    assert main(["--labels", str(maps / "ids.png"), "--out", str(tmp_path / "one.png")]) == 0
    assert (tmp_path / "one.png").is_file() and np.array_equal(cv2.imread(str(tmp_path / "one.png")), a)
    off = lut[ids].copy()
    off[5, 7] = (1, 2, 3)
    cv2.imwrite(str(maps / "colours.png"), off[..., ::-1])
    assert main(["--labels", str(maps / "colours.png"), "--out", str(tmp_path / "bad.png")]) == 2
    assert not (tmp_path / "bad.png").exists()


def test_one_convention_for_options(capsys):
    from rtgan.utils import cli

    ap = cli.Parser("prog", "doc")
    ap.add_argument("--batch_size", type=int, default=4, help="per process")
    ap.add_argument("--max-batch", type=int, default=2, help="plans")
    cli.add_size(ap, default="256x256")
    cli.add_set(ap)
    a = ap.parse_args(["--batch-size", "3", "--max_batch", "5", "--set", "ngf=8", "use_vae=true", "--set", "x=y"])
    assert (a.batch_size, a.max_batch, cli.size_of(a)) == (3, 5, (256, 256))
    assert cli.parse_sets(a.set) == {"ngf": 8, "use_vae": True, "x": "y"}
    assert cli.size_of(ap.parse_args(["--height", "64", "--width", "128"])) == (64, 128)
    ap.print_help()
    shown = capsys.readouterr().out
    assert "--batch-size BATCH_SIZE" in shown and "(default: 4)" in shown and "(default: 256x256)" in shown
    assert "--batch_size" not in shown  # aliases work but are not advertised


def test_errors_and_ctrl_c_are_one_line(capsys):
    from rtgan import ConfigError
    from rtgan.utils import cli

    def interrupted():
        raise KeyboardInterrupt

    def bad():
        raise ConfigError("unknown thing 'x'")

    assert cli.run(interrupted, "prog") == 130
    assert capsys.readouterr().err == "prog: interrupted\n"
    assert cli.run(bad, "prog") == 2
    assert capsys.readouterr().err == "prog: error: unknown thing 'x'\n"


def test_generate_names_the_classes_of_a_wrong_id(tmp_path, capsys):
    from rtgan.generate import main

    cv2.imwrite(str(tmp_path / "ids.png"), np.full((64, 64), 3, np.uint8))
    assert main(["--labels", str(tmp_path / "ids.png"), "--out", str(tmp_path / "p.png")]) == 2
    assert "label id 3 is not one of this model's classes; it takes the ids 156 sky" in capsys.readouterr().err


def test_an_option_a_backend_does_not_take_is_named(tmp_path):
    from rtgan import ConfigError, models
    from rtgan.export import export

    model = models.load(weights.path())
    with pytest.raises(ConfigError, match="'onnxruntime' takes no option 'max_batch' \\(only tensorrt, tensorrt-rtx"):
        export(model, height=64, width=64, max_batch=8, out=tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="'openvino' takes no option 'compute_capability'"):
        export(model, height=64, width=64, backend="openvino", compute_capability="SM86", out=tmp_path / "b")
    from rtgan.engine.engine import _AUTO_ORDER
    from rtgan.formats import FORMATS

    assert set(_AUTO_ORDER) == set(FORMATS) and _AUTO_ORDER[-1] == "torch"  # the reference is the last resort


def test_the_arch_list_of_the_commands_is_the_registry():
    from rtgan import presets
    from rtgan.models.registry import ARCHITECTURES

    assert presets.ARCHS == tuple(ARCHITECTURES)  # the torch-free copy the commands check --arch against


def test_export_takes_every_arch_name():
    from rtgan import ConfigError, presets
    from rtgan.export.__main__ import check, parser

    for arch in presets.ARCHS:  # the checks before PyTorch loads
        assert check(parser().parse_args(["--arch", arch, "--size", "64x64"]))["preset"] is None
    with pytest.raises(ConfigError, match=r"unknown architecture 'cyclgan' \(did you mean 'cyclegan'\?\); choose"):
        check(parser().parse_args(["--arch", "cyclgan", "--size", "64x64"]))
    (arch,) = [a for a in parser()._actions if a.dest == "arch"]
    assert arch.choices is None and all(name in arch.help for name in presets.ARCHS)  # choices: no typed error


@pytest.mark.parametrize(
    "arch, sets, size",
    [("pix2pix", ["ngf=8", "netG=unet_128"], "128x128"), ("cyclegan", ["ngf=8"], "64x96"),
     ("munit", ["dim=8", "mlp_dim=32"], "64x96")],
)  # fmt: skip
def test_export_builds_image_archs_by_name_for_tensorrt_rtx(arch, sets, size, tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorrt_rtx")
    from rtgan.models import init

    monkeypatch.setattr(init, "randomize_like_trained", lambda model, h, w: model)  # its statistics take seconds
    out = tmp_path / arch
    argv = ["--arch", arch, "--set", *sets, "--size", size, "--backend", "trt-rtx", "--compute-capability", "SM86"]
    assert _export_cli(*argv, "--out", str(out)) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arch"] == arch and manifest["target"] == {"device": "cuda", "gpu_arch": "SM86"}
    assert manifest["inputs"][0]["name"] == "source" and manifest["plan"]["plan_bytes"] > 0
