"""Procedural landscapes: determinism, class coverage, GauGAN colour convention, folder output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtgan.data import landscapes
from rtgan.data.landscapes import CLASSES, LABEL_IDS, PALETTE, layout, render


def test_same_seed_same_scene_and_seeds_differ():
    a, b = render(7, 64, 96), render(7, 64, 96)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = render(8, 64, 96)
    assert not np.array_equal(a[0], c[0])
    assert np.array_equal(layout(7, 64, 96), a[0])  # the label-only path draws the same layout


def test_outputs_are_ids_of_the_label_set_and_rgb():
    labels, image = render(3, 80, 120)
    assert labels.dtype == np.uint8 and labels.shape == (80, 120)
    assert image.dtype == np.uint8 and image.shape == (80, 120, 3)
    assert set(np.unique(labels)) <= set(LABEL_IDS)


def test_every_class_appears_across_seeds_with_sky_on_top():
    seen, area = set(), dict.fromkeys(LABEL_IDS, 0)
    for seed in range(40):
        labels = layout(seed, 64, 64)
        ids, counts = np.unique(labels, return_counts=True)
        seen |= set(ids.tolist())
        for i, n in zip(ids, counts):
            area[int(i)] += int(n)
        assert labels[0].tolist().count(landscapes.ID["sky"]) + labels[0].tolist().count(landscapes.ID["clouds"]) > 0
    missing = [landscapes.NAMES[i] for i in LABEL_IDS if i not in seen]
    assert not missing, f"classes never drawn in 40 scenes: {missing}"
    total = sum(area.values())
    assert area[landscapes.ID["sky"]] / total > 0.15 and area[landscapes.ID["grass"]] / total > 0.05


def test_classes_render_as_distinct_textures():
    # per-class mean colours of real renders differ (the GAN has something to learn per class)
    means: dict[int, list] = {}
    for seed in range(12):
        labels, image = render(seed, 96, 96)
        for i in np.unique(labels):
            means.setdefault(int(i), []).append(image[labels == i].mean(0))
    m = {i: np.mean(v, 0) for i, v in means.items()}
    sky, grass = m[landscapes.ID["sky"]], m[landscapes.ID["grass"]]
    assert sky[2] > sky[0] and grass[1] > grass[2]  # blue sky, green grass
    assert np.abs(sky - grass).sum() > 100


def test_palette_follows_gaugan_and_coco_stuff():
    assert len({c.id for c in CLASSES}) == len(CLASSES) == len(LABEL_IDS)
    assert len(set(PALETTE.values())) == len(PALETTE)
    for c in CLASSES:
        assert c.color[0] == c.id  # red channel carries the COCO-Stuff id
    # 0-based COCO-Stuff ids as in SPADE's label maps (labels.txt id - 1)
    assert (landscapes.ID["sky"], landscapes.ID["sea"], landscapes.ID["grass"], landscapes.ID["tree"]) == (
        156,
        154,
        123,
        168,
    )


def test_written_folder_reads_back_through_the_folder_dataset(tmp_path):
    from rtgan.data.folders import FolderDataset, Preprocess

    landscapes.write_folder(tmp_path / "ls", 3, 32, 64, seed=5, progress=False)
    pre = Preprocess(preprocess_mode="none", load_size=64, crop_size=64, no_flip=True, train=False)
    ds = FolderDataset(tmp_path / "ls" / "labels", tmp_path / "ls" / "images", label_nc=182, preprocess=pre)
    assert len(ds) == 3
    item = ds[1]
    labels, image = render(6, 32, 64)
    assert np.array_equal(item["labels"].numpy(), labels)
    assert np.allclose((item["image"].permute(1, 2, 0).numpy() + 1) * 127.5, image, atol=0.51)


def test_cli_writes_the_spade_layout(tmp_path):
    assert landscapes.main(["--out", str(tmp_path / "d"), "--count", "2", "--size", "32x32", "--no_progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "d" / "labels").iterdir()) == ["000000.png", "000001.png"]
    with pytest.raises(SystemExit):
        landscapes.main(["--out", str(tmp_path / "e"), "--size", "32by32"])


def test_cli_without_pillow_says_which_extra_before_any_work(tmp_path, monkeypatch, capsys):
    from rtgan.utils import extras

    found = extras.has_module
    monkeypatch.setattr(extras, "has_module", lambda m: m != "PIL" and found(m))
    rendered = []
    monkeypatch.setattr(landscapes, "render", lambda *a: rendered.append(a))
    assert landscapes.main(["--out", str(tmp_path / "d"), "--count", "2", "--size", "32x32"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "python -m rtgan.data.landscapes: error: writing the landscape dataset needs pillow, which is not installed: "
        "pip install 'rtgan[train]'\n"
    )
    assert not rendered and not (tmp_path / "d").exists()


def test_dataset_prerendered_in_processes_equals_rendered_on_access():
    from rtgan.data.synthetic import LandscapeDataset

    lazy, eager = LandscapeDataset(3, 32, 48, seed=5), LandscapeDataset(3, 32, 48, seed=5)
    eager.prerender(2)
    assert sorted(eager._store) == [0, 1, 2]
    for i in range(3):
        a, b = lazy[i], eager[i]
        assert a["path"] == b["path"] == f"landscape:{5 + i}"
        assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["image"], b["image"])
