"""The studio's controls for the style- and noise-driven generators, on small engines exported from slim random
models: OASIS's new noise and local-noise brush (RGN1 region maps, "noise" commands), SEAN's style picture per
class (STR1) or for the whole painting (STY1), StyleGAN without a label map (GEN1 frames, latent-walk steps, the
truncation scalar, POST /v1/paint). Every painting is compared with `Engine.run` on inputs composed here."""

import json

import cv2
import numpy as np
import pytest
import torch

from rtgan import Engine

pytest.importorskip("fastapi")
pytest.importorskip("httpx2")  # starlette's TestClient
pytest.importorskip("onnxruntime")
from fastapi.testclient import TestClient  # noqa: E402

from rtgan.demo.imaging import resize_cover  # noqa: E402
from rtgan.web.models import fixed_latent, style_codes, style_z, walk_z  # noqa: E402
from rtgan.web.protocol import FRAME, PAINTING, WALK  # noqa: E402

M = 4  # OASIS's noise regions: 0 (the image's z) and three local ones


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """Slim random OASIS (local noise), SEAN (codes and their encoder) and StyleGAN engines, onnxruntime fp32."""
    from rtgan.export import export
    from rtgan.models.oasis import OASISConfig, OASISGenerator
    from rtgan.models.sean import SEANConfig, SEANGenerator
    from rtgan.models.stylegan import StyleGANConfig, StyleGANGenerator
    from rtgan.utils import cpu

    torch.manual_seed(0)
    oasis = OASISGenerator(OASISConfig(label_nc=5, crop_size=64, aspect_ratio=1.0, channels_G=2, z_dim=8,
                                       noise_regions=M))  # fmt: skip
    with torch.no_grad():  # a smaller image scale: fewer saturated pixels, so the noise shows
        oasis.conv_img.weight.mul_(0.05)
        oasis.conv_img.bias.zero_()
    models = {
        "oasis": (oasis, 64),
        "sean": (SEANGenerator(SEANConfig(label_nc=4, no_instance=True, crop_size=32, ngf=4, style_length=8)), 32),
        "stylegan": (StyleGANGenerator(StyleGANConfig(code_dim=8, n_mlp=1, channels=(8, 8, 4), size=16)), 16),
    }
    root = tmp_path_factory.mktemp("generative")
    out = {}
    with pytest.MonkeyPatch.context() as mp:  # fp32 engines: no timing of bf16 runs
        mp.setattr(cpu, "has_bf16", lambda: False)
        for name, (model, size) in models.items():
            model.eval()
            directory = export(model, height=size, width=size, backend="onnxruntime", out=root / name, progress=False)
            out[name] = Engine.load(directory, "onnxruntime")
    return out


@pytest.fixture(scope="module")
def app(engines):
    from rtgan.web import create_app

    served = {name: Engine.load(e.directory, "onnxruntime") for name, e in engines.items()}  # the app's own
    return create_app(served, log=lambda s: None)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def ws(client):
    with client.websocket_connect("/v1/ws") as socket:
        assert receive(socket)[0]["type"] == "ready"
        yield socket


def receive(ws):
    message = ws.receive()
    if message.get("text") is not None:
        return json.loads(message["text"]), None
    data = message["bytes"]
    magic, seq, h, w, encoding, _, _ = PAINTING.unpack_from(data)
    assert magic == b"PNT1" and encoding == 0
    return {"type": "painting", "seq": seq}, np.frombuffer(data[PAINTING.size :], np.uint8).reshape(h, w, 4)[..., :3]


def command(ws, **fields) -> dict:
    ws.send_text(json.dumps(fields))
    return receive(ws)[0]


def frame(kind: bytes, seq: int, payload: bytes = b"", h: int = 0, w: int = 0, bpi: int = 0) -> bytes:
    return FRAME.pack(kind, seq, h, w, bpi) + payload


def ids(kind: bytes, seq: int, array: np.ndarray) -> bytes:
    return frame(kind, seq, array.astype(np.uint8).tobytes(), *array.shape, 1)


def paint(ws, message: bytes) -> np.ndarray:
    ws.send_bytes(message)
    reply, image = receive(ws)
    assert reply["type"] == "painting", reply
    return image


def layout(size: int, classes: int) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    return ((y * 2 // size) * 2 + (x * 2 // size)).astype(np.uint8) % classes


def test_models_tell_their_controls(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()}
    oasis, sean, stylegan = models["oasis"], models["sean"], models["stylegan"]
    assert (oasis["noise_regions"], oasis["style"], oasis["arch"]) == (M, True, "oasis")
    assert (sean["region_styles"], sean["style_image"], sean["noise_regions"]) == (True, True, None)
    assert (stylegan["input"], stylegan["classes"], stylegan["style"]) == ("latent", [], True)
    assert stylegan["scalars"] == [{"name": "truncation", "default": 1.0, "low": 0.0, "high": 1.0}]


def test_oasis_new_noise_and_the_local_noise_brush(ws, engines):
    e = engines["oasis"]
    assert command(ws, type="model", name="oasis")["model"] == "oasis"
    assert command(ws, type="style", seed=5) == {"type": "style", "source": "seed", "seed": 5}  # "new noise"
    labels = layout(64, 5)
    z = style_z(5, 8)
    base = paint(ws, ids(b"IDS1", 1, labels))
    assert np.array_equal(base, e.run(labels, z=z))  # no local noise yet: the image's own z everywhere

    # a stroke: region 1 with a fresh z (its seed told), the region map, then the labels painted with both
    assert command(ws, type="noise", region=1, seed=9) == {"type": "noise", "region": 1, "seed": 9}
    stroke = np.zeros((64, 64), np.uint8)
    stroke[17:27, 17:27] = 1
    ws.send_bytes(ids(b"RGN1", 2, stroke))
    assert receive(ws)[0] == {"type": "regions", "seq": 2}
    local = paint(ws, ids(b"IDS1", 3, labels))
    rows = np.zeros((M - 1, 8), np.float32)
    rows[0] = style_z(9, 8)[0]
    want = e.run(labels, z=z, noise_regions=stroke.astype(np.int32), z_regions=rows)
    assert np.array_equal(local, want) and not np.array_equal(local, base)
    # the pixel noise differs only under the stroke; the painting changes most there (the coarse layers of this
    # random OASIS carry some of it further: locality is the model's, the studio only places the noise)
    change = np.abs(local.astype(int) - base).max(-1)
    yy, xx = np.mgrid[:64, :64]
    far = np.maximum(np.maximum(17 - yy, yy - 26), np.maximum(17 - xx, xx - 26)) > 8
    assert change[17:27, 17:27].mean() > 2 * change[far].mean()
    # a region whose z is the image's own paints as no region at all
    rows[0] = z[0]
    assert np.array_equal(e.run(labels, z=z, noise_regions=stroke.astype(np.int32), z_regions=rows), base)

    # a new noise keeps the local one; clear noise (an all-0 map) paints the plain image again
    fresh = command(ws, type="style", seed=None)["seed"]
    rows[0] = style_z(9, 8)[0]
    want = e.run(labels, z=style_z(fresh, 8), noise_regions=stroke.astype(np.int32), z_regions=rows)
    assert np.array_equal(paint(ws, ids(b"IDS1", 4, labels)), want)
    ws.send_bytes(ids(b"RGN1", 5, np.zeros((64, 64), np.uint8)))
    assert receive(ws)[0]["type"] == "regions"
    assert np.array_equal(paint(ws, ids(b"IDS1", 6, labels)), e.run(labels, z=style_z(fresh, 8)))
    drawn = command(ws, type="noise", region=M - 1, seed=None)  # a seed drawn by the server, told
    assert drawn["region"] == M - 1 and isinstance(drawn["seed"], int)


def test_stylegan_without_labels_truncation_and_the_walk(ws, client, engines):
    e = engines["stylegan"]
    n = e.signature.input("noise").size
    command(ws, type="model", name="stylegan")
    command(ws, type="style", seed=3)
    z, noise = style_z(3, 8)[0], fixed_latent(3, 0, n)
    plain = paint(ws, frame(b"GEN1", 1))
    assert np.array_equal(plain, e.run(z=z, noise=noise, truncation=1.0))
    assert command(ws, type="scalar", name="truncation", value=0.4) == {"type": "scalar", "name": "truncation",
                                                                       "value": 0.4}  # fmt: skip
    truncated = paint(ws, frame(b"GEN1", 2))
    assert np.array_equal(truncated, e.run(z=z, noise=noise, truncation=0.4)) and not np.array_equal(truncated, plain)
    # a walk step: z on the way from seed 3 to seed 8, the noise and the truncation kept
    step = paint(ws, frame(b"GEN1", 3, WALK.pack(3, 8, 0.25)))
    assert np.array_equal(step, e.run(z=walk_z(3, 8, 0.25, 8)[0], noise=noise, truncation=0.4))
    assert np.allclose(walk_z(3, 8, 0.0, 8), style_z(3, 8), atol=1e-6)  # it starts at the seed's z...
    assert np.allclose(walk_z(3, 8, 1.0, 8), style_z(8, 8), atol=1e-5)  # ...and ends at the next one's
    # over REST: the seed and truncation paint the same image, no body needed
    response = client.post("/v1/paint?model=stylegan&seed=3&truncation=0.4")
    assert response.status_code == 200, response.text
    png = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal(png, truncated)
    bad = client.post("/v1/paint?model=stylegan&truncation=1.5")
    assert bad.status_code == 422 and "[0.0, 1.0]" in bad.json()["detail"]


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image[..., ::-1])[1].tobytes()


def test_sean_style_pictures_per_class_and_for_the_whole_painting(ws, client, engines):
    e = engines["sean"]
    n = e.signature.input("noise").size
    command(ws, type="model", name="sean")
    command(ws, type="style", seed=4)
    labels = layout(32, 4)
    codes, noise = style_codes(4, 4, 8), fixed_latent(4, 0, n)
    assert np.array_equal(paint(ws, ids(b"IDS1", 1, labels)), e.run(labels, style=codes, noise=noise))

    rng = np.random.default_rng(1)
    picture = cv2.GaussianBlur(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), (7, 7), 0)
    fitted = resize_cover(picture, 32, 32)  # as the studio fits a picture: centre crop, resize
    ws.send_bytes(frame(b"STR1", 2, _png(picture), h=2))  # class 2 in the height field
    assert receive(ws)[0] == {"type": "style", "seq": 2, "source": "image", "class": 2, "seed": None}
    codes = codes.copy()
    codes[2] = e.encode_style(fitted, labels=np.full((32, 32), 2, np.int32))[2]
    per_class = paint(ws, ids(b"IDS1", 3, labels))
    assert np.array_equal(per_class, e.run(labels, style=codes, noise=noise))

    ws.send_bytes(frame(b"STY1", 4, _png(picture)))  # every class's code, pooled over the last label map sent
    assert receive(ws)[0] == {"type": "style", "seq": 4, "source": "image", "seed": None}
    whole = e.encode_style(fitted, labels=labels.astype(np.int32))
    assert np.array_equal(paint(ws, ids(b"IDS1", 5, labels)), e.run(labels, style=whole, noise=noise))
    # over REST a seed fixes the codes and the noise as in the page
    body = cv2.imencode(".png", labels)[1].tobytes()
    response = client.post("/v1/paint?model=sean&seed=4", content=body, headers={"Content-Type": "image/png"})
    png = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal(png, e.run(labels, style=style_codes(4, 4, 8), noise=noise))


BAD_FRAMES = [
    ("oasis", "region map of another size", lambda: ids(b"RGN1", 7, np.zeros((32, 64))), "region map"),
    ("oasis", "region id outside", lambda: ids(b"RGN1", 7, np.full((64, 64), M)), f"regions are 0..{M - 1}"),
    ("oasis", "region map short", lambda: ids(b"RGN1", 7, np.zeros((64, 64)))[:-1], "payload bytes"),
    ("oasis", "GEN1 to a label model", lambda: frame(b"GEN1", 7), "send b'IDS1'"),
    ("oasis", "STR1 to OASIS", lambda: frame(b"STR1", 7, b"x", h=1), "no style picture per class"),
    ("sean", "RGN1 to SEAN", lambda: ids(b"RGN1", 7, np.zeros((32, 32))), "has no local noise"),
    ("sean", "STR1 of a class it lacks", lambda: frame(b"STR1", 7, b"x", h=9), "class 9 is not one of"),
    ("sean", "STR1 not a picture", lambda: frame(b"STR1", 7, b"not a picture", h=1), "cannot be decoded"),
    ("stylegan", "IDS1 to a model without labels", lambda: ids(b"IDS1", 7, np.zeros((16, 16))), "send b'GEN1'"),
    ("stylegan", "walk step short", lambda: frame(b"GEN1", 7, bytes(12)), "20-byte walk step"),
    ("stylegan", "walk t outside", lambda: frame(b"GEN1", 7, WALK.pack(1, 2, 1.5)), "t in [0, 1]"),
]


@pytest.mark.parametrize("model, what, message, text", BAD_FRAMES, ids=[b[1] for b in BAD_FRAMES])
def test_malformed_new_frames_are_errors_and_the_connection_lives_on(ws, model, what, message, text):
    command(ws, type="model", name=model)
    ws.send_bytes(message())
    reply, _ = receive(ws)
    assert reply["type"] == "error" and reply["seq"] == 7 and reply["error"] == "InputError", reply
    assert text in reply["message"], reply["message"]
    good = frame(b"GEN1", 8) if model == "stylegan" else ids(b"IDS1", 8, layout(64 if model == "oasis" else 32, 4))
    assert paint(ws, good).ndim == 3


BAD_COMMANDS = [
    ("oasis", {"type": "noise", "region": 0, "seed": 1}, "1..3"),
    ("oasis", {"type": "noise", "region": M, "seed": 1}, "1..3"),
    ("oasis", {"type": "noise", "region": 1, "seed": -1}, "0..2**63-1"),
    ("oasis", {"type": "noise", "region": 1}, "needs the field(s) seed"),
    ("oasis", {"type": "scalar", "name": "truncation", "value": 0.5}, "no scalar input 'truncation'"),
    ("sean", {"type": "noise", "region": 1, "seed": 1}, "has no local noise"),
    ("stylegan", {"type": "scalar", "name": "truncation", "value": 1.5}, "must be in [0.0, 1.0]"),
    ("stylegan", {"type": "scalar", "name": "truncation", "value": "high"}, "a finite number"),
    ("stylegan", {"type": "scalar", "name": "psi", "value": 0.5}, "its scalars: truncation"),
]


@pytest.mark.parametrize("model, fields, text", BAD_COMMANDS, ids=[f"{m}-{json.dumps(f)}" for m, f, _ in BAD_COMMANDS])
def test_bad_new_commands_are_errors(ws, model, fields, text):
    command(ws, type="model", name=model)
    reply = command(ws, **fields)
    assert reply["type"] == "error" and reply["seq"] is None and text in reply["message"], reply
