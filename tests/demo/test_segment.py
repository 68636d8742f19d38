"""Segmenters: the palette segmenter reads marker drawings back; the ONNX one maps a network's classes."""

import json

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from rtgan.data import landscapes as L
from rtgan.demo.segment import OnnxSegmenter, PaletteSegmenter, labels_from_png
from rtgan.errors import ConfigError, InputError


def marker_drawing(labels: np.ndarray, seed: int) -> np.ndarray:
    """A drawing of `labels` in GauGAN colours as a camera would see it: each marker a little off its
    palette colour, soft edges (blur), sensor noise."""
    rng = np.random.default_rng(seed)
    lut = np.zeros((256, 3), np.float32)
    for i, rgb in L.PALETTE.items():
        lut[i] = np.array(rgb) + rng.normal(0, 4, 3)
    image = cv2.GaussianBlur(lut[labels], (0, 0), 1.5) + rng.normal(0, 8, (*labels.shape, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
def test_palette_segmenter_reads_marker_drawings_back(seed):
    labels = L.layout(seed, 256, 256)
    out = PaletteSegmenter(L.PALETTE)(marker_drawing(labels, seed))
    assert out.shape == labels.shape
    assert (out == labels).mean() >= 0.95


def test_palette_segmenter_beats_plain_nearest_colour_on_blurred_edges():
    # the gradient-weighted vote is what gets blended edges right: without it the same drawing scores lower
    labels = L.layout(3, 256, 256)
    drawing = marker_drawing(labels, 3)
    voted = (PaletteSegmenter(L.PALETTE)(drawing) == labels).mean()
    plain = (PaletteSegmenter(L.PALETTE, window=1)(drawing) == labels).mean()
    assert voted > plain + 0.01


def test_blank_paper_becomes_the_paper_class():
    paper = np.full((64, 64, 3), 238, np.uint8)
    paper[20:40, 20:40] = L.PALETTE[L.ID["sea"]]
    out = PaletteSegmenter(L.PALETTE, paper=L.ID["sky"])(paper)
    assert (out[:10] == L.ID["sky"]).all() and (out[25:35, 25:35] == L.ID["sea"]).all()
    with pytest.raises(ConfigError, match="paper class"):
        PaletteSegmenter(L.PALETTE, paper=7)


def test_segmenter_input_errors_are_typed():
    seg = PaletteSegmenter(L.PALETTE)
    with pytest.raises(InputError, match="uint8 RGB"):
        seg(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError, match="uint8 RGB"):
        seg(np.zeros((8, 8), np.uint8))


def test_colour_label_pngs_read_through_the_palette():
    ids = L.layout(1, 32, 32)
    rgb = np.zeros((32, 32, 3), np.uint8)
    for i, c in L.PALETTE.items():
        rgb[ids == i] = c
    assert (labels_from_png(rgb, L.PALETTE) == ids).all()
    assert (labels_from_png(ids, None) == ids).all()
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(InputError, match=r"\(1, 2, 3\)"):
        labels_from_png(rgb, L.PALETTE)


def _tiny_segmentation_net(path, classes: int = 4):
    """A 1x1 convolution that scores class c by how much of colour channel c % 3 a pixel has, at 1/2 size.

    Network classes: 0 = red-ish, 1 = green-ish, 2 = blue-ish, 3 = never wins (bias -100)."""
    w = np.zeros((classes, 3, 1, 1), np.float32)
    for c in range(3):
        w[c, c] = 1.0
    b = np.array([0, 0, 0, -100][:classes], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["x"], ["half"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Conv", ["half", "w", "b"], ["logits"]),
        ],
        "seg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 48])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes, 16, 24])],
        [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(b, "b")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_onnx_segmenter_maps_network_classes_to_ours(tmp_path):
    _tiny_segmentation_net(tmp_path / "seg.onnx")
    (tmp_path / "map.json").write_text(json.dumps({"classes": {"0": "flower", "1": "grass", "2": L.ID["sea"]}}))
    seg = OnnxSegmenter(tmp_path / "seg.onnx", tmp_path / "map.json", L.LABEL_IDS, L.ID)
    image = np.zeros((64, 96, 3), np.uint8)  # any size: resized to the network's 32x48 and back
    image[:, :32] = (200, 10, 10)
    image[:, 32:64] = (10, 200, 10)
    image[:, 64:] = (10, 10, 200)
    out = seg(image)
    assert out.shape == (64, 96)
    assert (out[:, :30] == L.ID["flower"]).all()
    assert (out[:, 34:62] == L.ID["grass"]).all()
    assert (out[:, 66:] == L.ID["sea"]).all()


def test_onnx_segmenter_rejects_bad_mappings(tmp_path):
    _tiny_segmentation_net(tmp_path / "seg.onnx")
    bad = {
        "unknown name": ({"classes": {"0": "lava"}}, "unknown class name 'lava'"),
        "id not in model": ({"classes": {"0": 7}}, "not one of the painting model's label ids"),
        "no classes": ({"mean": [0, 0, 0]}, "classes"),
    }
    for spec, message in bad.values():
        (tmp_path / "map.json").write_text(json.dumps(spec))
        with pytest.raises(ConfigError, match=message):
            OnnxSegmenter(tmp_path / "seg.onnx", tmp_path / "map.json", L.LABEL_IDS, L.ID)
    (tmp_path / "map.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        OnnxSegmenter(tmp_path / "seg.onnx", tmp_path / "map.json", L.LABEL_IDS, L.ID)
    (tmp_path / "map.json").write_text(json.dumps({"classes": {"0": "sky"}}))
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ConfigError, match="not a loadable ONNX model"):
        OnnxSegmenter(tmp_path / "broken.onnx", tmp_path / "map.json", L.LABEL_IDS, L.ID)


def test_a_stray_colour_is_named_by_pixel_count_and_nearest_class(tmp_path):
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:] = L.PALETTE[L.ID["sky"]]
    sea = np.array(L.PALETTE[L.ID["sea"]])
    rgb[5, 7:10] = sea + (3, -4, 0)  # an anti-aliased sea edge: 3 pixels just off the sea colour
    rgb[20, 1] = sea - (0, 5, 5)
    with pytest.raises(InputError) as e:
        labels_from_png(rgb, L.PALETTE, L.NAMES)
    message = str(e.value)
    first = tuple(int(v) for v in rgb[5, 7])
    assert "(x=7, y=5)" in message and str(first) in message  # row by row, the first one
    assert "4 pixels" in message and str(L.PALETTE[L.ID["sea"]]) in message and "(sea)" in message
    # a label-map source names its file too
    from rtgan.demo.sources import open_source

    cv2.imwrite(str(tmp_path / "map.png"), rgb[..., ::-1])
    with pytest.raises(InputError, match=r"map\.png: 4 pixels .* \(x=7, y=5\)"):
        open_source(f"labels:{tmp_path / 'map.png'}", 32, 48, palette=L.PALETTE, names=L.NAMES)
