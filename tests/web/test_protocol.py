"""The WebSocket protocol (rtgan/web/protocol.py) through FastAPI's TestClient: id frames paint what
`Engine.run` paints, every malformed message is a JSON error that leaves the connection serving,
each frame gets exactly one answer, connections keep their own model and style."""

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from rtgan import Engine, weights
from rtgan.data import landscapes, sketches
from rtgan.demo.imaging import resize_cover

pytest.importorskip("fastapi")
pytest.importorskip("httpx2")  # starlette's TestClient
from fastapi.testclient import TestClient  # noqa: E402

from rtgan.web.protocol import FRAME, PAINTING  # noqa: E402
from rtgan.web.session import PendingSlot  # noqa: E402

LIMIT = 2**20
MODELS = ["landscape-asapnet", "landscape-spade", "sketch2landscape-pix2pix"]


@pytest.fixture(scope="module")
def painted():
    return []  # what the app's on_frame observer saw


@pytest.fixture(scope="module")
def app(painted):
    from rtgan.web import create_app

    return create_app(MODELS, size=(256, 256), max_message=LIMIT, on_frame=painted.append, log=lambda s: None)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def engines(app):
    """Each model's shipped engine opened on its own, as the app runs it (auto precision may pick bf16)."""
    out = {}
    for name in MODELS:
        served = app.state.studio.models[name].engine
        out[name] = Engine.load(weights.path(name) / "engine", served.backend_name, precision=served.precision)
    return out


def ids_frame(seq: int, ids: np.ndarray, bpi: int = 1) -> bytes:
    h, w = ids.shape
    return FRAME.pack(b"IDS1", seq, h, w, bpi) + ids.astype("<u2" if bpi == 2 else np.uint8).tobytes()


def picture_frame(kind: bytes, seq: int, data: bytes) -> bytes:
    return FRAME.pack(kind, seq, 0, 0, 0) + data


def z_of(seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, size)).astype(np.float32)


def receive(ws) -> tuple[dict | None, np.ndarray | None]:
    """The next message: (json, None) or (header fields, the painting as RGB)."""
    message = ws.receive()
    if message.get("text") is not None:
        return json.loads(message["text"]), None
    data = message["bytes"]
    magic, seq, h, w, encoding, engine_ms, server_ms = PAINTING.unpack_from(data)
    body = data[PAINTING.size :]
    if encoding == 0:
        image = np.frombuffer(body, np.uint8).reshape(h, w, 4)[..., :3]
    else:
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    fields = {"type": "painting", "seq": seq, "encoding": encoding, "engine_ms": engine_ms, "server_ms": server_ms}
    assert magic == b"PNT1" and image.shape == (h, w, 3)
    return fields, image


def connect(client):
    ws = client.websocket_connect("/v1/ws")
    socket = ws.__enter__()
    ready, _ = receive(socket)
    assert ready["type"] == "ready" and ready["model"] == MODELS[0]
    return ws, socket


@pytest.fixture
def ws(client):
    session, socket = connect(client)
    yield socket
    session.__exit__(None, None, None)


def paint(ws, frame: bytes):
    ws.send_bytes(frame)
    return receive(ws)


def command(ws, **fields) -> dict:
    ws.send_text(json.dumps(fields))
    reply, _ = receive(ws)
    return reply


def test_an_ids_frame_paints_what_the_engine_paints(ws, engines, painted):
    ids = landscapes.layout(3, 256, 256)
    header, image = paint(ws, ids_frame(11, ids))
    assert header["seq"] == 11 and header["encoding"] == 0
    assert 0 < header["engine_ms"] <= header["server_ms"]
    assert np.array_equal(image, engines["landscape-asapnet"].run(ids))
    assert np.array_equal(painted[-1].labels, ids) and painted[-1].seq == 11
    _, wide = paint(ws, ids_frame(12, ids, bpi=2))  # 2 bytes per id also carries 8-bit ids
    assert np.array_equal(wide, image)


@pytest.mark.parametrize("encoding", ["png", "jpeg"])
def test_encodings(ws, engines, encoding):
    assert command(ws, type="encoding", value=encoding) == {"type": "encoding", "value": encoding}
    ids = landscapes.layout(4, 256, 256)
    header, image = paint(ws, ids_frame(1, ids))
    want = engines["landscape-asapnet"].run(ids)
    if encoding == "png":  # lossless
        assert header["encoding"] == 2 and np.array_equal(image, want)
    else:
        assert header["encoding"] == 1 and np.abs(image.astype(int) - want).mean() < 4


def _bad_ids() -> np.ndarray:
    ids = landscapes.layout(3, 256, 256).copy()
    ids[10, 20] = 3
    return ids


GOOD = landscapes.layout(3, 256, 256)
MALFORMED = [
    ("short", lambda: b"IDS1", None, "16-byte header"),
    ("unknown kind", lambda: FRAME.pack(b"XXXX", 5, 256, 256, 1) + GOOD.tobytes(), 5, "unknown frame kind"),
    ("wrong size", lambda: ids_frame(6, GOOD[:128]), 6, "is 256x128"),
    ("wrong length", lambda: ids_frame(7, GOOD)[:-1], 7, "65535 payload bytes"),
    ("bytes per id", lambda: FRAME.pack(b"IDS1", 8, 256, 256, 3) + bytes(3 * 256 * 256), 8, "3 bytes per id"),
    ("id outside", lambda: ids_frame(9, _bad_ids()), 9, "label id 3 at (x=20, y=10)"),
    ("a picture to a label model", lambda: picture_frame(b"IMG1", 10, b"\xff\xd8"), 10, "paints label maps"),
    ("a style picture to a model without style", lambda: picture_frame(b"STY1", 13, b"x"), 13, "takes no style"),
    ("above the limit", lambda: ids_frame(14, GOOD) + bytes(LIMIT), 14, "above the limit"),
]


@pytest.mark.parametrize("what, message, seq, text", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_frames_are_errors_and_the_connection_keeps_painting(ws, engines, what, message, seq, text):
    reply, _ = paint(ws, message())
    assert reply["type"] == "error" and reply["seq"] == seq and reply["error"] == "InputError", reply
    assert text in reply["message"]
    header, image = paint(ws, ids_frame(99, GOOD))
    assert header["seq"] == 99 and np.array_equal(image, engines["landscape-asapnet"].run(GOOD))


COMMANDS = [
    ("not json", "{nope", "JSON command"),
    ("not an object", "[1, 2]", 'with a "type"'),
    ("unknown command", '{"type": "teleport"}', "unknown command 'teleport'"),
    ("missing field", '{"type": "model"}', "needs the field(s) name"),
    ("unknown model", '{"type": "model", "name": "landscape-spaed"}', "did you mean 'landscape-spade'"),
    ("unknown encoding", '{"type": "encoding", "value": "webp"}', "unknown encoding"),
    ("style of a model without one", '{"type": "style", "seed": 3}', "has no style"),
    ("above the limit", json.dumps({"type": "style", "seed": 1, "pad": "x" * LIMIT}), "above the limit"),
]


@pytest.mark.parametrize("what, text, message", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_bad_commands_are_errors_and_the_connection_keeps_painting(ws, what, text, message):
    ws.send_text(text)
    reply, _ = receive(ws)
    assert reply["type"] == "error" and reply["seq"] is None and message in reply["message"], reply
    header, _ = paint(ws, ids_frame(5, GOOD))
    assert header["type"] == "painting" and header["seq"] == 5


def test_the_pending_slot_keeps_only_the_newest():
    async def scenario():
        slot = PendingSlot()
        assert slot.put("a") is None
        assert slot.put("b") == "a"  # replaced before it was painted
        assert slot.put("c") == "b"
        assert await slot.take() == "c"
        waiter = asyncio.create_task(slot.take())
        await asyncio.sleep(0)
        assert not waiter.done()  # nothing waiting: take blocks
        slot.put("d")
        assert await asyncio.wait_for(waiter, 5) == "d"
        slot.put("e")
        assert slot.clear() == "e" and slot.clear() is None

    asyncio.run(scenario())


def test_every_frame_gets_one_answer_and_the_newest_is_painted(ws, engines):
    frames = [landscapes.layout(s, 256, 256) for s in range(6)]
    for seq, ids in enumerate(frames, 1):  # sent without waiting: some may be replaced while one paints
        ws.send_bytes(ids_frame(seq, ids))
    answers = {}
    while len(answers) < len(frames):
        reply, image = receive(ws)
        assert reply["type"] in ("painting", "skipped") and reply["seq"] not in answers
        answers[reply["seq"]] = image
    assert set(answers) == set(range(1, 7))
    assert np.array_equal(answers[6], engines["landscape-asapnet"].run(frames[-1]))


def test_two_connections_keep_their_own_model_and_style(client, engines):
    (a_session, a), (b_session, b) = connect(client), connect(client)
    try:
        assert command(a, type="model", name="landscape-spade")["model"] == "landscape-spade"
        assert command(a, type="style", seed=5) == {"type": "style", "source": "seed", "seed": 5}
        ids = landscapes.layout(7, 256, 256)
        a.send_bytes(ids_frame(1, ids))
        b.send_bytes(ids_frame(1, ids))
        (_, on_a), (_, on_b) = receive(a), receive(b)
        assert np.array_equal(on_a, engines["landscape-spade"].run(ids, z=z_of(5)))
        assert np.array_equal(on_b, engines["landscape-asapnet"].run(ids))
    finally:
        a_session.__exit__(None, None, None)
        b_session.__exit__(None, None, None)


def test_style_commands(ws, engines):
    spade, ids = engines["landscape-spade"], landscapes.layout(8, 256, 256)
    switched = command(ws, type="model", name="landscape-spade")
    assert switched["model"] == "landscape-spade" and isinstance(switched["seed"], int)
    _, image = paint(ws, ids_frame(1, ids))  # the connection's own random style, kept between frames
    assert np.array_equal(image, spade.run(ids, z=z_of(switched["seed"])))
    assert np.array_equal(paint(ws, ids_frame(2, ids))[1], image)
    fresh = command(ws, type="style", seed=None)
    assert fresh["type"] == "style" and fresh["seed"] != switched["seed"]
    assert np.array_equal(paint(ws, ids_frame(3, ids))[1], spade.run(ids, z=z_of(fresh["seed"])))
    assert command(ws, type="style", seed=-4)["type"] == "error"
    style = landscapes.render(2, 200, 300)[1]
    ws.send_bytes(picture_frame(b"STY1", 4, cv2.imencode(".png", style[..., ::-1])[1].tobytes()))
    assert receive(ws)[0] == {"type": "style", "seq": 4, "source": "image", "seed": None}
    assert np.array_equal(paint(ws, ids_frame(5, ids))[1], spade.run(ids, style=style))
    ws.send_bytes(picture_frame(b"STY1", 6, b"not a picture"))
    reply, _ = receive(ws)
    assert reply["type"] == "error" and reply["seq"] == 6 and "cannot be decoded" in reply["message"]


def test_pictures_for_an_image_to_image_model(ws, engines, painted):
    command(ws, type="model", name="sketch2landscape-pix2pix")
    sketch = sketches.render(5, 240, 320)[0]  # another size: centre crop, then resized
    jpeg = cv2.imencode(".jpg", sketch[..., ::-1])[1].tobytes()
    header, image = paint(ws, picture_frame(b"IMG1", 1, jpeg))
    source = resize_cover(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1], 256, 256)
    assert header["seq"] == 1 and np.array_equal(image, engines["sketch2landscape-pix2pix"].run(source=source))
    assert np.array_equal(painted[-1].source, source) and painted[-1].labels is None
    reply, _ = paint(ws, picture_frame(b"IMG1", 2, b"\xff\xd8\xff broken"))
    assert reply["type"] == "error" and reply["seq"] == 2 and "cannot be decoded" in reply["message"]
    reply, _ = paint(ws, ids_frame(3, GOOD))
    assert reply["type"] == "error" and "translates pictures" in reply["message"]
    assert paint(ws, picture_frame(b"IMG1", 4, jpeg))[0]["seq"] == 4


def test_a_socket_from_another_sites_page_is_refused(client):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/v1/ws", headers={"origin": "http://elsewhere.example"}):
            pass
    assert refused.value.code == 1008
    with client.websocket_connect("/v1/ws", headers={"origin": "http://testserver"}) as ws:  # the page's own
        assert receive(ws)[0]["type"] == "ready"


def test_ctrl_c_closes_connected_sockets_and_the_server_exits(tmp_path):
    """`python -m rtgan.web` with a client connected: SIGINT closes the socket (1012) and the process exits 0."""
    ws_connect = pytest.importorskip("websockets.sync.client", reason="needs websockets >= 11").connect

    cmd = [sys.executable, "-m", "rtgan.web", "--port", "0", "--model", "landscape-asapnet", "--size", "256x256"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RTGAN_CACHE": str(tmp_path / "cache")}
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 60)  # bounded: a server that never starts fails
        line = server.stdout.readline() if ready else ""  # "rtgan web studio: http://127.0.0.1:PORT/  (models: ...)"
        assert "http://" in line, line + server.stderr.read() if server.poll() is not None else line
        url = re.search(r"http://(\S+)/", line).group(1)
        with ws_connect(f"ws://{url}/v1/ws", open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
            ws.send(ids_frame(1, GOOD))
            assert ws.recv(timeout=30)[:4] == b"PNT1"
            start = time.monotonic()
            server.send_signal(signal.SIGINT)
            with pytest.raises(Exception) as closed:  # ConnectionClosed: the server closed it, no hang
                ws.recv(timeout=10)
            assert getattr(getattr(closed.value, "rcvd", None), "code", None) == 1012, closed.value
        assert server.wait(timeout=10) == 0 and time.monotonic() - start < 6
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
