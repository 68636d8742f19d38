"""The no-download quality check and the bundling of a run into a shipped model."""

from __future__ import annotations

import json
import shlex

import numpy as np
import torch
from test_train import config

from rtgan.data.landscapes import LABEL_IDS
from rtgan.train import TrainConfig, train
from rtgan.train.bundle import bundle, refresh_quality
from rtgan.train.options import OPERATIONAL, check, parse
from rtgan.train.quality import Segmenter, colour_distance, confusion, miou


def test_miou_against_a_hand_count():
    target = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    m, iou = miou(confusion(pred, target, 4))
    # class 0: tp 1, union 3; class 1: tp 2, union 3; class 2: tp 1, union 2; class 3 absent
    assert np.allclose(iou[:3], [1 / 3, 2 / 3, 1 / 2]) and np.isnan(iou[3])
    assert np.isclose(m, (1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_colour_distance_is_zero_for_identical_and_grows_with_shift():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 200, (32, 32, 3)).astype(np.uint8)
    labels = np.zeros((32, 32), int)
    assert np.nanmax(colour_distance(real, real, labels)) == 0
    assert np.isclose(colour_distance(real + 10, real, labels)[0], 10)
    assert np.isnan(colour_distance(real, real, labels)[1])


def test_segmenter_shapes():
    logits = Segmenter()(torch.zeros(2, 3, 40, 56))
    assert logits.shape == (2, len(LABEL_IDS), 40, 56)


def test_bundle_writes_loadable_fp16_model_and_card(tmp_path):
    from rtgan.models import load

    run = tmp_path / "run"
    train(config("pix2pixhd", run, steps=2, save_every=2))
    quality = {"real renders": None}
    out = bundle(run, tmp_path / "landscape-pix2pixhd", quality)
    model = load(out)
    assert model.config.label_ids == LABEL_IDS
    meta = json.loads((out / "config.json").read_text())
    assert meta["trained"]["steps"] == 2
    card = (out / "MODEL_CARD.md").read_text()
    assert "| steps | 2 at batch 2" in card and "samples.png" in card
    # the card's command trains this run again: every flag it was trained with, in today's spelling
    cmd = next(line for line in card.splitlines() if line.startswith("python -m rtgan.train "))
    again = TrainConfig.from_dict(check(parse(shlex.split(cmd)[3:]))).to_dict()
    saved = TrainConfig.from_dict(json.loads((run / "checkpoint" / "train_state.json").read_text())["train_config"])
    assert {k: v for k, v in again.items() if k not in OPERATIONAL} == {
        k: v for k, v in json.loads(json.dumps(saved.to_dict())).items() if k not in OPERATIONAL
    }
    assert (out / "samples.png").stat().st_size > 1000
    assert (out / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "losses.png" in card

    # re-scored (a new segmenter): only the quality section changes
    score = {"miou": 0.5, "pixel_accuracy": 0.75, "mean_colour_distance": 12.0, "iou": {"sky": 0.9},
             "colour_distance": {"sky": 3.0}}  # fmt: skip
    refresh_quality(out, {"real renders": score, "landscape-pix2pixhd": score})
    new = (out / "MODEL_CARD.md").read_text()
    assert "| landscape-pix2pixhd | 0.500 | 0.750 | 12.0 |" in new and "| sky | 0.900 | 3.0 |" in new
    before, after = card.split("## Quality"), new.split("## Quality")
    assert before[0] == after[0] and card[card.index("## Samples") :] == new[new.index("## Samples") :]
    assert "at the ceiling" not in new
    refresh_quality(out, {"real renders": score, "landscape-pix2pixhd": {**score, "miou": 0.6}})
    assert "read it as at the ceiling, not above it" in (out / "MODEL_CARD.md").read_text()


def test_quality_cli_scores_the_real_renders_and_each_model(tmp_path):
    from rtgan.train import quality

    run = tmp_path / "run"
    train(config("pix2pixhd", run, steps=1, save_every=1))
    model = tmp_path / "landscape-pix2pixhd"
    (run / "checkpoint" / "generator").rename(model)
    quality.main(["--models", str(model), "--out", str(tmp_path / "q"), "--scenes", "1", "--segmenter_steps", "1"])
    result = json.loads((tmp_path / "q" / "quality.json").read_text())
    assert list(result) == ["real renders", "landscape-pix2pixhd"]
    assert all(0 <= r["miou"] <= 1 and 0 <= r["pixel_accuracy"] <= 1 for r in result.values())
    assert (tmp_path / "q" / "segmenter-1.safetensors").is_file()  # reused by the next run


def test_card_rows_say_how_to_repeat_each_recipe_change():
    from rtgan.train.bundle import _change_row

    rows = {
        "lambda": {"lambda_texture": [0.0, 20.0]},
        "noise": {"noise_nc": [0, 4]},
        "decoder": {"noise_decoder": [False, True]},
        "kick": {"noise_decoder_init_std": [0, 0.05]},
        "resize": {"upsample": ["transpose", "nearest"]},
        "smooth": {"upsample": ["nearest", "bilinear"]},
    }
    row = {k: _change_row("m", {"step": 7, "changed": v}) for k, v in rows.items()}
    assert row["lambda"].startswith("| recipe change at step 7 | lambda_texture 0 → 20 (")
    assert "run the steps before it without the change" in row["lambda"]
    assert "`python tools/add_noise.py --run runs/m` at that step" in row["noise"]
    assert "`python tools/add_noise.py --run runs/m --decoder` at that step" in row["decoder"]
    assert "`python tools/add_noise.py --run runs/m --decoder --init-std 0.05`" in row["kick"]
    cmd = "python tools/resize_upsampling.py --run runs/m"
    assert f"upsample transpose → nearest (`{cmd} --mode nearest` at that step: fresh upsampling convs" in row["resize"]
    assert f"upsample nearest → bilinear (`{cmd} --mode bilinear` at that step: same weights" in row["smooth"]
