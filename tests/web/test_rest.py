"""POST /v1/paint and GET /v1/models through FastAPI's TestClient: a label-id PNG paints exactly what
`Engine.run` paints on the same ids (same artifact, backend and precision), a seed is a z drawn as
documented, and every bad body is a 4xx naming the problem."""

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from rtgan import Engine, weights
from rtgan.data import landscapes

pytest.importorskip("fastapi")
pytest.importorskip("httpx2")  # starlette's TestClient
from fastapi.testclient import TestClient  # noqa: E402

LIMIT = 2**20  # the app's body limit here: small, so that "too large" is cheap to send


@pytest.fixture(scope="module")
def app():
    from rtgan.web import create_app

    # 256x256: the shipped engines' size (and no measuring of the 512x512 one)
    return create_app(["landscape-asapnet", "landscape-spade"], size=(256, 256), max_message=LIMIT, log=lambda s: None)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


def _same_engine(app, name: str) -> Engine:
    """The model's shipped engine opened on its own, as the app runs it (auto precision may pick bf16)."""
    served = app.state.studio.models[name].engine
    return Engine.load(weights.path(name) / "engine", served.backend_name, precision=served.precision)


def _png(array: np.ndarray) -> bytes:
    return cv2.imencode(".png", array)[1].tobytes()


def _post(client, body: bytes, query: str = "", content_type: str | None = "image/png"):
    headers = {"Content-Type": content_type} if content_type else {}
    return client.post(f"/v1/paint{query}", content=body, headers=headers)


def _painting(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]


def test_a_label_png_paints_what_the_engine_paints(app, client):
    ids = landscapes.layout(3, 256, 256)
    got = _painting(_post(client, _png(ids)))
    assert np.array_equal(got, _same_engine(app, "landscape-asapnet").run(ids))


def test_a_16_bit_png_holds_the_same_ids(app, client):
    ids = landscapes.layout(4, 256, 256)
    wide = _painting(_post(client, _png(ids.astype(np.uint16)), "?model=landscape-asapnet"))
    assert np.array_equal(wide, _painting(_post(client, _png(ids))))


def test_a_seed_is_a_z_drawn_from_it(app, client):
    ids = landscapes.layout(5, 256, 256)
    engine = _same_engine(app, "landscape-spade")
    z = np.random.default_rng(7).standard_normal((1, engine.manifest["z_dim"])).astype(np.float32)
    response = _post(client, _png(ids), "?model=landscape-spade&seed=7")
    assert response.headers["x-rtgan-seed"] == "7"
    assert np.array_equal(_painting(response), engine.run(ids, z=z))
    half = _painting(_post(client, _png(ids), "?model=landscape-spade&seed=7&temperature=0.5"))
    assert np.array_equal(half, engine.run(ids, z=(z * 0.5).astype(np.float32)))


def test_without_a_seed_the_style_is_random_and_told(app, client):
    ids = landscapes.layout(5, 256, 256)
    first, second = (_post(client, _png(ids), "?model=landscape-spade") for _ in range(2))
    assert first.headers["x-rtgan-seed"] != second.headers["x-rtgan-seed"]
    seed = int(first.headers["x-rtgan-seed"])
    again = _post(client, _png(ids), f"?model=landscape-spade&seed={seed}")
    assert np.array_equal(_painting(again), _painting(first))


def _truncated() -> bytes:
    return _png(landscapes.layout(3, 256, 256))[:60]


BAD = [
    ("empty", lambda: b"", "image/png", 400, "empty"),
    ("not a png", lambda: b"GIF89a" + bytes(100), "image/png", 400, "not a PNG"),
    ("truncated png", _truncated, "image/png", 400, "cannot be decoded"),
    ("colour png", lambda: _png(np.full((256, 256, 3), 156, np.uint8)), "image/png", 422, "3 channels"),
    ("wrong size", lambda: _png(np.full((128, 256), 156, np.uint8)), "image/png", 422, "256x128 pixels"),
    ("id outside the classes", lambda: _png(np.full((256, 256), 7, np.uint8)), "image/png", 422, "label id 7"),
    ("16-bit id outside", lambda: _png(np.full((256, 256), 3000, np.uint16)), "image/png", 422, "label id 3000"),
    ("wrong content type", lambda: _png(landscapes.layout(3, 256, 256)), "text/plain", 415, "image/png"),
    ("no content type", lambda: _png(landscapes.layout(3, 256, 256)), None, 415, "no Content-Type"),
    ("too large", lambda: b"\x89PNG\r\n\x1a\n" + bytes(LIMIT), "image/png", 413, "limit"),
]


@pytest.mark.parametrize("what, body, content_type, status, message", BAD, ids=[b[0] for b in BAD])
def test_bad_bodies_are_refused_by_name(client, what, body, content_type, status, message):
    response = _post(client, body(), content_type=content_type)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_an_unknown_model_or_seed_is_refused(client):
    body = _png(landscapes.layout(3, 256, 256))
    response = _post(client, body, "?model=landscape-spaed")
    assert response.status_code == 404 and "did you mean 'landscape-spade'" in response.json()["detail"]
    assert _post(client, body, "?model=landscape-spade&seed=-1").status_code == 422
    assert _post(client, body, "?model=landscape-spade&seed=x").status_code == 422


def test_models_lists_sizes_classes_colours_and_style(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()}
    assert list(models) == ["landscape-asapnet", "landscape-spade"]  # the default first
    asap, spade = models["landscape-asapnet"], models["landscape-spade"]
    assert (asap["height"], asap["width"], asap["input"], asap["bytes_per_id"]) == (256, 256, "labels", 1)
    assert [c["id"] for c in asap["classes"]] == list(landscapes.LABEL_IDS)
    assert {c["id"]: tuple(c["color"]) for c in asap["classes"]} == landscapes.PALETTE
    assert {c["name"] for c in asap["classes"]} >= {"sky", "mountain", "sea", "grass", "tree"}
    assert asap["background"] == landscapes.ID["sky"]
    assert (asap["style"], asap["style_image"]) == (False, False)
    assert (spade["style"], spade["style_image"]) == (True, True)


def test_labels_reads_colour_maps_and_fits_the_size(client):
    ids = landscapes.layout(6, 128, 192)  # another size and aspect ratio: centre crop, nearest
    colours = np.zeros((*ids.shape, 3), np.uint8)
    for i, rgb in landscapes.PALETTE.items():
        colours[ids == i] = rgb
    response = client.post("/v1/labels", content=_png(colours[..., ::-1]), headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert (response.headers["x-height"], response.headers["x-width"], response.headers["x-bytes-per-id"]) == (
        "256", "256", "1",
    )  # fmt: skip
    got = np.frombuffer(response.content, np.uint8).reshape(256, 256)
    assert np.array_equal(got, cv2.resize(ids[:, 32:160], (256, 256), interpolation=cv2.INTER_NEAREST))
    stray = colours.copy()
    stray[5, 9] = (1, 2, 3)
    response = client.post("/v1/labels", content=_png(stray[..., ::-1]), headers={"Content-Type": "image/png"})
    assert response.status_code == 422 and "(x=9, y=5)" in response.json()["detail"]


def test_openapi_describes_paint_with_png_bodies(client):
    schema = client.get("/openapi.json").json()
    paint = schema["paths"]["/v1/paint"]["post"]
    assert "image/png" in paint["requestBody"]["content"] and paint["requestBody"]["required"]
    assert "image/png" in paint["responses"]["200"]["content"]
    assert {p["name"] for p in paint["parameters"]} >= {"model", "seed"}
    assert {"400", "413", "415", "422"} <= set(paint["responses"])
    assert "/v1/models" in schema["paths"]
    assert client.get("/").headers["content-type"].startswith("text/html")


def test_the_studio_serves_without_torch(tmp_path):
    """Like tests/test_torch_free.py: the web layer imports no torch, model, export or training code."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        textwrap.dedent(
            """
            import importlib.abc, sys
            BLOCKED = ("torch", "rtgan.models", "rtgan.train", "rtgan.export")

            class Block(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                        raise ImportError(f"{name} is blocked in this test")

            sys.meta_path.insert(0, Block())
            import numpy as np, cv2
            from fastapi.testclient import TestClient
            from rtgan.data import landscapes
            from rtgan.web import create_app
            from rtgan.web.__main__ import parser

            client = TestClient(create_app(["landscape-asapnet"], size=(256, 256)))
            png = cv2.imencode(".png", landscapes.layout(3, 256, 256))[1].tobytes()
            r = client.post("/v1/paint", content=png, headers={"Content-Type": "image/png"})
            assert r.status_code == 200, r.text
            with client.websocket_connect("/v1/ws") as ws:
                assert ws.receive_json()["type"] == "ready"
            assert "torch" not in sys.modules
            print("ok")
            """
        )
    )
    env = {**os.environ, "RTGAN_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


def test_the_command_listens_on_localhost_unless_told(capsys):
    from rtgan.web.__main__ import parser
    from rtgan.web.server import is_loopback

    args = parser().parse_args([])
    assert (args.host, args.port, args.models) == ("127.0.0.1", 8000, None)
    assert "127.0.0.1 keeps the studio on this machine" in " ".join(parser().format_help().split())
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
