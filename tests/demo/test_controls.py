"""The demo's controls of style- and noise-driven generators on slim random engines: StyleGAN's latent walk
and truncation (headless, one panel), OASIS's new z and local-noise brush, SEAN's style images."""

import numpy as np
import pytest

from rtgan import Engine
from rtgan.demo import Demo, DemoConfig
from rtgan.demo import controls as C
from rtgan.demo.engines import Painter
from rtgan.demo.imaging import cv2, resize_cover
from rtgan.demo.paint import Canvas
from rtgan.demo.pipeline import Packet

pytest.importorskip("onnxruntime")
quiet = lambda *_: None  # noqa: E731


def _export(model, h, w, out):
    from rtgan.export import export

    return export(model.eval(), height=h, width=w, backend="onnxruntime", out=out, progress=False)


@pytest.fixture(scope="module")
def stylegan(tmp_path_factory):
    from rtgan.models.stylegan import StyleGANConfig, StyleGANGenerator

    model = StyleGANGenerator(StyleGANConfig(code_dim=16, n_mlp=2, channels=(16, 8, 8, 4), size=32))
    return _export(model, 32, 32, tmp_path_factory.mktemp("sg") / "stylegan")


@pytest.fixture(scope="module")
def oasis(tmp_path_factory):
    """Slim Cityscapes-mode OASIS with 3 noise regions, conv_img rescaled to a pre-tanh std of 0.6 (PyTorch's
    init saturates the image, which would hide what the noise changes)."""
    import torch

    from rtgan.models.oasis import OASISConfig, OASISGenerator

    cfg = OASISConfig(label_nc=34, crop_size=64, aspect_ratio=2.0, channels_G=4, z_dim=16, noise_regions=4)
    model = OASISGenerator(cfg).eval()
    seen = []
    hook = model.conv_img.register_forward_hook(lambda m, i, out: seen.append(out.transpose(0, 1).flatten(1)))
    labels = torch.zeros(1, 32, 64, dtype=torch.long)
    labels[..., 32:] = 7
    with torch.no_grad():
        model(*model.prepare_inputs(labels=labels, z=torch.randn(1, 16, generator=torch.Generator().manual_seed(0))))
        hook.remove()
        scale = 0.6 / seen[0].std(1)
        model.conv_img.weight.mul_(scale.view(-1, 1, 1, 1))
        model.conv_img.bias.copy_((model.conv_img.bias - seen[0].mean(1)) * scale)
    return _export(model, 32, 64, tmp_path_factory.mktemp("oasis") / "oasis")


def _same(path, painter):
    return Engine.load(path, painter.engine.backend_name, precision=painter.engine.precision)


def test_latent_walk_follows_its_keyframes_and_jumps_smoothly():
    walk = C.LatentWalk(8, seed=3, frames=4)
    zs = [walk.advance() for _ in range(9)]
    k = [C.keyframe(3, j, 8) for j in range(4)]
    for i, z in enumerate(zs):
        want = C.slerp(k[i // 4], k[i // 4 + 1], C.ease((i % 4) / 4))
        np.testing.assert_allclose(z, want, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(zs[0], k[0])
    np.testing.assert_allclose(zs[4], k[1], atol=1e-6)  # segments meet at the keyframes
    walk.jump()  # a new target, from where z is
    after = walk.advance()
    np.testing.assert_allclose(after, C.slerp(zs[-1], C.keyframe(3, 4, 8), C.ease(1 / 4)), atol=1e-6)
    assert np.linalg.norm(after - zs[-1]) < np.linalg.norm(C.keyframe(3, 4, 8) - zs[-1])


def test_headless_stylegan_walks_one_panel_with_truncation(stylegan, tmp_path):
    demo = Demo(
        DemoConfig(models=(str(stylegan),), headless=True, out=str(tmp_path), frames=6, walk_frames=3),
        log=quiet,
    )
    assert demo.painter.generative and demo.live.name == "scene"  # no camera probed
    assert demo.painter.nudge(-1) == pytest.approx(0.95) and demo.painter.nudge(-1) == pytest.approx(0.9)
    seen, frame = [], demo.frame
    demo.frame = lambda p: (seen.append(p), frame(p))[1]
    assert demo.run() == 0
    engine = _same(stylegan, demo.painter)
    sig = engine.signature.input("truncation")
    assert (sig.kind, sig.low, sig.high, sig.default) == ("scalar", 0.0, 1.0, 1.0)
    walk = [C.slerp(C.keyframe(0, i // 3, 16), C.keyframe(0, i // 3 + 1, 16), C.ease((i % 3) / 3)) for i in range(60)]
    noise = seen[0].inputs["noise"]
    at = -1
    for p in seen[:-1]:  # the last is drawn again for the closing snapshot
        assert p.image is None and p.labels is None  # one panel: the painting
        assert (p.inputs["noise"] == noise).all() and p.inputs["truncation"] == pytest.approx(0.9)
        z = p.inputs["z"]
        at = next(i for i in range(at + 1, 60) if np.allclose(walk[i], z, atol=1e-6))  # in the walk's order
        assert (p.painting == engine.run(z=z, noise=noise, truncation=0.9)).all()
    assert at >= 4 and len({p.inputs["z"].tobytes() for p in seen}) >= 4
    snap = cv2().imread(str(tmp_path / "snapshot-001.png"))
    assert snap.shape == (32, 32, 3)  # the painting alone
    assert "truncation 0.90" in demo.painter.status()


def test_oasis_z_is_stable_until_n_and_the_noise_brush_changes_only_its_stroke(oasis):
    painter = Painter([str(oasis)], log=quiet, seed=5)
    canvas = Canvas(32, 64, {i: str(i) for i in range(35)}, None, seed=5)
    canvas.labels[:, 32:] = 7
    painter.attach(canvas)
    assert canvas.noise_classes == 4 and canvas.noise_dim == 16
    paint = lambda: painter(Packet(0, 0.0, labels=canvas.snapshot()))  # noqa: E731
    a, b = paint(), paint()
    z = a.inputs["z"]
    assert (a.painting == b.painting).all() and (b.inputs["z"] == z).all()
    assert painter.new_style()
    c, d = paint(), paint()
    assert not np.array_equal(c.inputs["z"], z) and (d.inputs["z"] == c.inputs["z"]).all()  # changed once
    assert (c.painting != a.painting).any() and (d.painting == c.painting).all()

    assert canvas.toggle_noise()
    canvas.size = 6
    canvas.press(10, 12)
    canvas.drag(20, 12)
    canvas.release()
    stroke = paint()
    want_map = np.zeros((32, 64), np.int32)
    cv2().circle(want_map, (10, 12), 3, 1, -1)
    cv2().line(want_map, (10, 12), (20, 12), 1, 6)
    want_z = np.zeros((3, 16), np.float32)
    want_z[0] = C.stroke_z(5, 1, 16)
    np.testing.assert_array_equal(stroke.inputs["noise_regions"], want_map)
    np.testing.assert_array_equal(stroke.inputs["z_regions"], want_z)
    engine = _same(oasis, painter)
    labels = canvas.snapshot()
    assert (stroke.painting == engine.run(labels, z=c.inputs["z"], noise_regions=want_map, z_regions=want_z)).all()
    changed = np.abs(stroke.painting.astype(int) - c.painting).max(2) > 0
    assert changed[want_map > 0].any()  # the painting changes under the stroke
    diff = np.abs(stroke.painting.astype(int) - c.painting).max(2)
    away = cv2().distanceTransform((want_map == 0).astype(np.uint8), cv2().DIST_L2, 3)  # px from the stroke
    assert (away > 28).sum() > 400 and not changed[away > 28].any()  # nothing changes beyond the generator's reach
    assert diff[want_map > 0].mean() > 4 * diff[(away > 8) & (away <= 28)].mean()  # and little near it
    canvas.press(50, 25)  # a second stroke: region 2, a z of its own
    assert canvas.region == 2 and (canvas.noise_snapshot()[1][1] == C.stroke_z(5, 2, 16)).all()
    assert canvas.undo() and canvas.region == 1 and not (canvas.noise == 2).any()
    canvas.clear_noise()
    assert (paint().painting == c.painting).all()  # the noise map cleared: the image-wide z again


def test_sean_codes_compose_whole_image_and_region_styles(tmp_path):
    from rtgan.models.sean import SEANConfig, SEANGenerator

    out = _export(SEANGenerator(SEANConfig(label_nc=5, crop_size=32, ngf=4, style_length=16)), 32, 32, tmp_path / "s")
    rng = np.random.default_rng(0)
    whole = [rng.integers(0, 256, (32, 32, 3), np.uint8), rng.integers(0, 256, (48, 40, 3), np.uint8)]
    region = rng.integers(0, 256, (32, 32, 3), np.uint8)
    paths = []
    for i, image in enumerate([*whole, region]):
        paths.append(tmp_path / f"style{i}.png")
        cv2().imwrite(str(paths[-1]), image[..., ::-1])
    painter = Painter(
        [str(out)], log=quiet, style_images=(str(paths[0]), str(paths[1])), region_styles=(f"3={paths[2]}",)
    )
    labels = np.zeros((32, 32), np.int32)
    labels[8:, :16], labels[20:, 10:] = 3, 1
    engine = _same(out, painter)
    for image in (whole[0], resize_cover(whole[1], 32, 32)):
        p = painter(Packet(0, 0.0, labels=labels))
        want = engine.encode_style(image, labels=labels).copy()
        want[3] = engine.encode_style(region, labels=np.full((32, 32), 3, np.int32))[3]
        np.testing.assert_allclose(p.inputs["style"], want, rtol=0, atol=1e-6)
        assert (p.painting == engine.run(labels, style=want, noise=p.inputs["noise"])).all()
        assert painter.next_style_image() is not None  # t: the next whole-image style
    assert "style style0.png (1/2) + 1 region style" in painter.status()


class _Window:
    def set_trackbar(self, name, value):
        pass


def test_keys_reach_the_noise_brush_truncation_and_style_controls(oasis, stylegan, tmp_path):
    said = []
    config = DemoConfig(models=(str(oasis),), headless=True, out=str(tmp_path), source="scene", paint=True)
    demo = Demo(config, said.append)
    demo.window = window = _Window()
    key = lambda ch: demo._key(ord(ch), None, window)  # noqa: E731
    assert key("b") and demo.canvas.noise_mode
    demo._on_mouse(cv2().EVENT_LBUTTONDOWN, 5, 5, 0)
    demo._on_mouse(cv2().EVENT_MOUSEMOVE, 15, 5, cv2().EVENT_FLAG_LBUTTON)
    demo._on_mouse(cv2().EVENT_LBUTTONUP, 15, 5, 0)
    assert (demo.canvas.noise[5, 5:16] == 1).all() and (demo.canvas.labels == demo.canvas.ids[0]).all()
    packet = demo.painter(Packet(0, 0.0, labels=demo.canvas.snapshot()))
    assert (packet.inputs["noise_regions"] == demo.canvas.noise).all()
    assert demo.frame(packet).shape[1] == 2 * 128  # labels | painting, zoomed
    assert key("x") and not demo.canvas.noise.any()
    assert key("t") and "no style images" in said[-1]
    assert key("b") and not demo.canvas.noise_mode
    assert key("]") and demo.canvas.size > 2  # painting a label-map model: [ ] size the brush

    demo = Demo(DemoConfig(models=(str(stylegan),), headless=True, out=str(tmp_path)), said.append)
    key = lambda ch: demo._key(ord(ch), None, window)  # noqa: E731
    assert key("[") and said[-1] == "truncation 0.95"
    assert key("]") and key("]") and said[-1] == "truncation 1.00"  # held within [low, high]
    walk = demo.painter.controls.walk
    assert key("n") and demo.painter(Packet(0, 0.0)).inputs["z"] is not None and walk.drawn == 3  # jumped once
