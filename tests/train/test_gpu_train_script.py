"""benchmarks/gpu/train.py, the GPU training launcher, run on the CPU: it trains, stops, and packs a
run that `rtgan.train.bundle` turns into a shipped model, within what comes back from the device."""

import importlib.util
import json
import tarfile
from pathlib import Path

import torch

from rtgan.models import load
from rtgan.train.bundle import bundle

ROOT = Path(__file__).parents[2]
spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "benchmarks/gpu/train.py")
gpu_train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_train)


def test_trains_packs_and_the_pack_bundles(tmp_path):
    runs, packs = tmp_path / "runs", tmp_path / "packs"
    argv = ["--presets", "landscape-pix2pixhd", "--device", "cpu", "--batch_size", "1", "--steps", "2"]
    argv += ["--save_every", "1", "--workers", "0", "--minutes", "5", "--runs", str(runs), "--pack", str(packs)]
    assert gpu_train.main(argv) == 0
    tar = packs / "landscape-pix2pixhd.tar"
    assert tar.stat().st_size < 16 * 2**20  # the device returns files up to 16 MiB
    with tarfile.open(tar) as t:
        names = set(t.getnames())
        assert "checkpoint/train_state.safetensors" not in names  # no optimizer state
        assert {"checkpoint/train_state.json", "checkpoint/packed.json", "losses.jsonl"} <= names
        t.extractall(tmp_path / "unpacked", filter="data")
    run = tmp_path / "unpacked"
    assert json.loads((run / "checkpoint/train_state.json").read_text())["step"] == 2
    # the packed generator paints as the run's own checkpoint does (fp16 rounding aside)
    packed, full = load(run / "checkpoint/generator"), load(runs / "landscape-pix2pixhd/checkpoint/generator")
    for (k, a), b in zip(packed.state_dict().items(), full.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3), k
    out = bundle(run, tmp_path / "landscape-pix2pixhd")
    card = (out / "MODEL_CARD.md").read_text()
    db = json.loads((run / "checkpoint/packed.json").read_text())["fp16_psnr"]
    assert f"({db:.1f} dB PSNR" in card and "| steps | 2 at batch 1" in card
