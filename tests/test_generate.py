"""The main command runs end to end and writes what it says; `import rtgan` stays free of PyTorch."""

import subprocess
import sys

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")


def test_generate_writes_images(tmp_path):
    from rtgan import models
    from rtgan.generate import main
    from rtgan.scenes import street_scene

    spade = models.save(models.get_model("spade-cityscapes", ngf=4, spade_hidden=8), tmp_path / "spade")
    assert main(["--model", str(spade), "--size", "128x256", "--out", str(tmp_path / "a")]) == 0
    image = cv2.imread(str(tmp_path / "a" / "image.png"))
    labels = cv2.imread(str(tmp_path / "a" / "labels.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape == (128, 256, 3) and image.std() > 0
    assert np.array_equal(labels, street_scene(128, 256)[0])  # Cityscapes ids: the built-in street
    assert cv2.imread(str(tmp_path / "a" / "side_by_side.png")).shape == (128, 512, 3)

    # the written label PNG is a valid --labels input and gives the same labels back
    asap = models.save(models.get_model("asapnet-cityscapes", lr_max_width=16, lr_depth=1), tmp_path / "asap")
    again = tmp_path / "again"
    assert main(["--model", str(asap), "--labels", str(tmp_path / "a" / "labels.png"), "--out", str(again)]) == 0
    assert np.array_equal(cv2.imread(str(again / "labels.png"), cv2.IMREAD_UNCHANGED), labels)


def test_street_scene_uses_cityscapes_classes():
    from rtgan.scenes import CITYSCAPES, street_scene

    labels, instance = street_scene(256, 512)
    present = set(np.unique(labels))
    assert {CITYSCAPES[k][0] for k in ("sky", "building", "road", "car", "person", "vegetation")} <= present
    cars = np.unique(instance[labels == CITYSCAPES["car"][0]])
    assert len(cars) == 2  # two separate car instances, so instance edges separate them


def test_import_rtgan_does_not_import_torch():
    code = "import rtgan, rtgan.scenes, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
