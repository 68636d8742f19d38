"""`python -m rtgan.bench`: arguments checked before any work, no temporary files left, trained models by name.

The runs are tiny (64x64 or a bundled model's 256x256, one repeat, ONNX Runtime only); where a test
does not need them, the matmul peak and the case processes are replaced by stand-ins.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest

from rtgan import bench
from rtgan.errors import ConfigError
from rtgan.utils import extras

ROOT = Path(__file__).resolve().parents[1]
# one thread: two OpenMP threads on two cores shared with other work spin, and run 100x slower
ONE = ["--backends", "onnxruntime", "--threads", "1", "--repeats", "1"]
TINY = ["--model", "landscape-asapnet", "--size", "64x64", *ONE]


def _env(tmp: Path) -> dict:
    return {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1", "RTGAN_ASSUME_GPU": "0"}


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a run gets as far as measuring anything."""

    def started(*a, **k):
        raise AssertionError("the bench started working before every argument was checked")

    monkeypatch.setattr(bench, "matmul_peak", started)  # the first step of a run


@pytest.fixture
def fresh_tmp(tmp_path, monkeypatch) -> Path:
    """An empty temp folder for this process and the processes it spawns."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches; make it read TMPDIR again
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))  # restored after _case sets it
    return tmp


@pytest.fixture
def quick(monkeypatch):
    """The matmul peak as a constant: it takes seconds and has no bearing on what these tests check."""
    monkeypatch.setattr(bench, "matmul_peak", lambda threads, n=2048: {"torch": 100.0})


def test_misspelled_backend_fails_before_torch_or_any_measurement(tmp_path):
    # issue 17: `--backends onnxrt` used to measure for ~10 s before failing; what makes it fail at
    # once is that nothing loads or runs first (checked as such, not by the wall clock: CI may be loaded)
    code = "import sys; from rtgan import bench; sys.exit(bench.main(sys.argv[1:]) + 10 * ('torch' in sys.modules))"
    p = subprocess.run(
        [sys.executable, "-c", code, "--backends", "onnxrt", "--out", str(tmp_path / "out")],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr  # 12 would mean PyTorch was imported for nothing
    assert "did you mean 'onnxruntime'?" in p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert p.stdout == ""  # no case was measured (each prints a progress line)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--archs", "spad"], "did you mean 'spade'?"),
        (["--model", "landscape-asap"], "did you mean 'landscape-asapnet'?"),
        (["--backends", "onnxruntime", "openvin"], "did you mean 'openvino'?"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--archs", "spade", "--model", "landscape-spade"], "not both"),
        (["--archs", "asapnet", "--size", "72x144"], "multiples of 16"),  # the preset's own size check
        (["--model", "landscape-spade", "--size", "128x128"], "takes 256x256 only"),  # a VAE's fixed latent grid
    ],
)
def test_bad_arguments_fail_before_any_work(args, message, no_work, tmp_path, capsys):
    assert bench.main(args + ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_bad_size_syntax_is_an_argument_error(no_work, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--size", "256"])
    assert e.value.code == 2 and "HEIGHTxWIDTH" in capsys.readouterr().err


def test_engine_and_official_checkpoint_are_refused_with_the_reason(no_work, tmp_path, capsys):
    engine = tmp_path / "engine"
    engine.mkdir()
    (engine / "manifest.json").write_text("{}")
    official = tmp_path / "latest_net_G.pth"
    official.write_bytes(b"")
    for model, kind in [(engine, "exported engine"), (official, "official checkpoint")]:
        assert bench.main(["--model", str(model)]) == 2
        err = capsys.readouterr().err
        assert kind in err and "eager reference" in err, err


def test_gpu_backend_refused_on_a_machine_without_one(no_work, monkeypatch, capsys):
    monkeypatch.setattr(extras, "nvidia_gpu_present", lambda: False)
    assert bench.main(["--backends", "onnxruntime", "trt"]) == 2  # an alias, resolved before the check
    err = capsys.readouterr().err
    assert "tensorrt backend needs an NVIDIA GPU" in err and "onnxruntime, openvino" in err, err


def test_missing_matplotlib_fails_before_work_and_names_the_fix(no_work, monkeypatch, capsys):
    real = extras.has_module
    monkeypatch.setattr(extras, "has_module", lambda m: m != "matplotlib" and real(m))
    assert bench.main(["--model", "landscape-asapnet"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'rtgan[bench]'" in err and "--no-plot" in err, err


def test_no_plot_writes_table_and_json_without_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setattr(extras, "has_module", lambda m: False if m == "matplotlib" else True)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import of it now raises
    row = dict(
        arch="asapnet", preset="landscape-asapnet", case="eager PyTorch (official-style)", size="64x64",
        p50_ms=10.0, p90_ms=11.0, p99_ms=12.0, speedup_vs_eager=1.0, psnr_db=999.0, gflop=0.2,
        achieved_gflops=20.0, peak_rss_mb=100.0,
    )  # fmt: skip
    machine = {"cpu": "x", "cores": 2, "threads": 2, "matmul_gflops": {"torch": 1.0}, "matmul_peak_gflops": 1.0}
    monkeypatch.setattr(bench, "measure", lambda plan: {"machine": machine, "rows": [row]})
    out = tmp_path / "out"
    assert bench.main([*TINY, "--no-plot", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bench.json", "bench.md"]
    # --report redraws a saved run (one from before --model too: its rows have no "subject")
    (out / "bench.md").unlink()
    assert bench.main(["--report", str(out / "bench.json"), "--no-plot"]) == 0
    assert "landscape-asapnet 64x64" in (out / "bench.md").read_text()


def test_help_shows_every_option_with_help_and_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ["--model", "--archs", "--backends", "--size", "--repeats", "--threads", "--out", "--no-plot"]:
        assert option in text
    text = " ".join(text.split())  # as wrapped to the terminal
    assert "(default: 5)" in text and "(default: out/bench)" in text and "openvino onnxruntime" in text
    assert [a.dest for a in bench.parser()._actions if not a.help] == []  # written, not filled in by Parser
    assert bench.parser().parse_args(["--no_plot"]).no_plot  # cli.Parser's underscore aliases


def test_tiny_run_leaves_the_temp_folder_empty(fresh_tmp, quick, tmp_path, capsys):
    # the case processes are real (spawned): what they write must go too
    out = tmp_path / "out"
    assert bench.main([*TINY, "--no-plot", "--out", str(out)]) == 0
    assert list(fresh_tmp.iterdir()) == []
    rows = json.loads((out / "bench.json").read_text())["rows"]
    cases = ["eager PyTorch (official-style)", "naive ONNX on onnxruntime", "rtgan onnxruntime"]
    assert [r["case"] for r in rows] == cases
    assert all(r["psnr_db"] >= 30 for r in rows), rows


@pytest.mark.parametrize("error, rc", [(ConfigError("forced"), 2), (KeyboardInterrupt(), 130)])
def test_error_or_interrupt_mid_run_leaves_the_temp_folder_empty(error, rc, fresh_tmp, quick, monkeypatch, tmp_path):
    seen = []

    def case(spec):  # by the first case the model and both engines are in the work directory
        seen.extend(Path(spec["feeds"]).parent.rglob("*"))
        raise error

    monkeypatch.setattr(bench, "_in_process", case)
    assert bench.main([*TINY, "--no-plot", "--out", str(tmp_path / "out")]) == rc
    assert any(p.name == "model.onnx" for p in seen)  # there was something to remove
    assert list(fresh_tmp.iterdir()) == []


def _wait_for(stream, text: bytes, timeout: float) -> None:
    """Read a child's stdout until `text` (progress lines end without a newline until their case is done)."""
    seen, deadline = b"", time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([stream], [], [], left)[0], f"no {text!r} within {timeout} s: {seen!r}"
        chunk = os.read(stream.fileno(), 4096)
        assert chunk, f"the bench exited before {text!r}: {seen!r}"
        seen += chunk


def test_ctrl_c_during_a_case_process_cleans_up_and_prints_one_line(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # a terminal's Ctrl-C: SIGINT to the whole process group, while a case process is measuring
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "  # even if started ignored
        "from rtgan.bench import main; sys.exit(main(sys.argv[1:]))"
    )
    args = [*TINY[:-1], "100000", "--no-plot", "--out", str(tmp_path / "out")]
    p = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=_env(tmp), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(p.stdout, b"eager PyTorch", timeout=120)
        deadline = time.monotonic() + 120  # the case process is up and has written its engines
        while not any(tmp.rglob("model.onnx")):
            assert time.monotonic() < deadline and p.poll() is None, "the run never wrote its engines"
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, err
    assert err.decode().strip() == "python -m rtgan.bench: interrupted"
    assert list(tmp.iterdir()) == []


def test_every_bundled_model_benches_by_name(quick, monkeypatch, tmp_path):
    # the cases run in this process here (no spawn): what is checked is that each model opens, exports
    # and runs against its own eager reference; the spawned path is covered above
    monkeypatch.setattr(bench, "_in_process", bench._case)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    rows = []
    # two models in one run, at a small --size; the SPADE VAE at its natural (and only) size, 256x256
    for args in (["landscape-asapnet", "landscape-pix2pixhd", "--size", "64x64"], ["landscape-spade"]):
        out = tmp_path / args[0]
        assert bench.main(["--model", *args, *ONE, "--no-plot", "--out", str(out)]) == 0
        rows += json.loads((out / "bench.json").read_text())["rows"]
    names = ["landscape-asapnet", "landscape-pix2pixhd", "landscape-spade"]
    assert [r["subject"] for r in rows] == [n for n in names for _ in range(3)]
    assert [r["size"] for r in rows] == ["64x64"] * 6 + ["256x256"] * 3
    assert [r["arch"] for r in rows[::3]] == ["asapnet", "pix2pixhd", "spade"]
    assert [r["speedup_vs_eager"] for r in rows[::3]] == [1.0] * 3  # each against its own eager reference
    engines = [r for r in rows if r["case"] == "rtgan onnxruntime"]
    assert all(r["psnr_db"] >= 30 for r in engines), engines


def test_a_precision_no_backend_offers_is_refused_before_the_run():
    from rtgan.bench import plan
    from rtgan.errors import ConfigError

    with pytest.raises(ConfigError, match="--precisions bf16: none of the backends onnxruntime offers it"):
        plan(["spade"], ["onnxruntime"], precisions=["fp32", "bf16"])
    p = plan(["spade"], ["openvino", "onnxruntime"], precisions=["fp32", "int8", "int8"])
    assert p.precisions == ("fp32", "int8")


def test_asapnet_on_openvino_is_also_timed_with_the_fused_cpu_kernels(tmp_path):
    from rtgan.models import load

    p = bench.plan(models=["landscape-asapnet", "landscape-pix2pixhd"], backends=["openvino"], size=(64, 64))
    fused = {}
    for s in p.subjects:
        model = load(s.path).eval()
        cases = dict(bench._cases(s, p, model, s.path, tmp_path / s.name))
        fused[s.name] = {label: spec for label, spec in cases.items() if "fused" in label}
    assert list(fused["landscape-pix2pixhd"]) == []  # no fused kernels for its graph
    spec = fused["landscape-asapnet"]["rtgan openvino fused"]
    assert spec["kernels"] is True and spec["backend"] == "openvino" and spec["precision"] == "fp32"
    result = bench._case({**spec, "feeds": _feeds(tmp_path, 64), "threads": 1, "repeats": 1,
                          "image": str(tmp_path / "image.npy")})  # fmt: skip
    assert result["p50_ms"] > 0 and np.load(tmp_path / "image.npy").shape == (1, 64, 64, 3)


def _feeds(tmp: Path, size: int) -> str:
    from rtgan.data import landscapes

    labels = landscapes.layout(5, size, size).astype(np.int32)[None]
    np.savez(tmp / "feeds.npz", labels=labels)
    return str(tmp / "feeds.npz")


def test_cyclegan_is_an_arch_measured_at_its_release_size():
    subjects = bench.plan_subjects(["cyclegan", "spade"])
    assert [(s.name, s.arch, s.size) for s in subjects] == [
        ("cyclegan-style-monet", "cyclegan", "256x256"),  # every released CycleGAN model's size
        ("spade-cityscapes", "spade", "256x512"),
    ]
    assert {s.size for s in bench.plan_subjects(["cyclegan", "spade"], size=(128, 256))} == {"128x256"}
    with pytest.raises(ConfigError, match="multiples of 4"):  # the ResNet's own size check
        bench.check_sizes(bench.plan(["cyclegan"], ["onnxruntime"], size=(66, 64)))


def test_an_image_in_model_translates_a_photo_and_the_engines_paint_what_eager_paints(quick, monkeypatch, tmp_path):
    # a slim CycleGAN ResNet-9 (ngf 8) with random realistic weights, benched as a model directory
    import torch

    from rtgan.models import get_model, save
    from rtgan.models.init import randomize_like_trained

    model = randomize_like_trained(get_model("cyclegan-style-monet", ngf=8), 64, 64)
    save(model, tmp_path / "cyclegan")
    monkeypatch.setattr(bench, "_in_process", bench._case)  # the cases in this process: see above
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    p = bench.plan(models=[str(tmp_path / "cyclegan")], backends=["onnxruntime"], size=(64, 64), repeats=1,
                   threads=1)  # fmt: skip
    work = tmp_path / "work"
    rows = bench.measure(p, workdir=work, progress=False)["rows"]
    assert [r["case"] for r in rows] == ["eager PyTorch (official-style)", "naive ONNX on onnxruntime",
                                         "rtgan onnxruntime"]  # fmt: skip
    assert all(r["arch"] == "cyclegan" and r["size"] == "64x64" and r["p50_ms"] > 0 for r in rows)
    (sub,) = work.iterdir()
    feeds = dict(np.load(sub / "feeds.npz"))
    assert list(feeds) == ["source"]  # the signature's image input, by name
    photo = feeds["source"]
    assert photo.shape == (1, 64, 64, 3) and photo.dtype == np.uint8
    steps = np.abs(np.diff(photo.astype(np.int16), axis=2)).mean()
    assert steps < 0.5 * photo.std()  # a picture (regions, gradients), not per-pixel noise
    eager, naive, engine = (np.load(sub / f"{i}.npy") for i in range(3))
    # the eager case is the model on that photo, in [-1, 1] as the official loader makes it
    x = torch.from_numpy(photo).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    with torch.no_grad():
        own = ((model(x) + 1) * 127.5).clamp(0, 255).permute(0, 2, 3, 1).numpy()
    assert eager.shape == (1, 64, 64, 3) and eager.dtype == np.uint8
    assert np.abs(eager.astype(float) - own).max() <= 1.0  # the uint8 conversion's rounding
    assert eager.std() > 10  # a painting, not a flat image
    for image, row in [(naive, rows[1]), (engine, rows[2])]:
        assert np.abs(image.astype(int) - eager.astype(int)).max() <= 1
        assert row["psnr_db"] >= 60, row


def test_a_reduced_precision_export_below_its_floor_is_reported_not_fatal(monkeypatch, tmp_path):
    import rtgan.export

    def fake_export(model, *, precision="fp32", out, **options):
        if precision == "int8":  # what export raises below the floor, leaving no artifact
            raise ConfigError("int8 paints 21.0 dB against the fp32 reference on held-out maps, below the floor")
        return out

    monkeypatch.setattr(rtgan.export, "export", fake_export)
    p = bench.Plan(bench.plan_subjects(["oasis", "sean"]), ("openvino",), 1, 1, precisions=("fp32", "int8"))
    assert [s.size for s in p.subjects] == ["256x256", "256x256"]  # their release size
    model = types.SimpleNamespace(config=types.SimpleNamespace(arch="oasis"))
    refused = []
    cases = dict(bench._cases(p.subjects[0], p, model, tmp_path, tmp_path, refused))
    assert "rtgan openvino" in cases and "rtgan openvino int8" not in cases
    assert refused == [{"subject": "oasis-ade20k", "case": "rtgan openvino int8", "refused": ANY}]
    machine = {"cpu": "x", "cores": 2, "threads": 1, "matmul_gflops": {"torch": 1.0}, "matmul_peak_gflops": 1.0}
    table = bench.markdown({"machine": machine, "rows": [], "refused": refused})
    assert "oasis-ade20k: rtgan openvino int8 not measured: int8 paints 21.0 dB" in table
