"""The studio's WebSocket protocol (`/v1/ws`): binary frames in, binary paintings out, JSON for the rest.

Client -> server, binary: a 16-byte little-endian header, then the payload.

    offset  size  field
    0       4     kind: b"IDS1" label ids | b"IMG1" a picture (image-to-image models) | b"STY1" a style image
    4       4     seq (uint32, chosen by the client; echoed in the answer)
    8       2     height  (IDS1; 0 otherwise)
    10      2     width   (IDS1; 0 otherwise)
    12      1     bytes per id: 1 (uint8) or 2 (uint16, little-endian) (IDS1; 0 otherwise)
    13      3     reserved, zero
    16      ...   IDS1: height * width ids, row-major; IMG1 / STY1: a JPEG or PNG file

Client -> server, JSON text: {"type": "model", "name": NAME} | {"type": "style", "seed": INT or null
(random)} | {"type": "encoding", "value": "rgba" | "jpeg" | "png"}.

Server -> client, binary: a painting, a 24-byte header, then the image.

    0   4  b"PNT1"          4   4  seq (of the frame painted)
    8   2  height           10  2  width
    12  1  encoding: 0 raw RGBA (height * width * 4 bytes, for putImageData), 1 JPEG, 2 PNG
    13  3  reserved         16  4  engine ms (float32: Engine.run alone)
    20  4  server ms (float32: from the frame's arrival to this send: checks, waiting, run, encoding)

Server -> client, JSON text: "ready" (on connect), "model", "style", "encoding" (acknowledgements),
"error" {seq, error, message}, "skipped" {seq} (a newer frame replaced it before it was painted).
Every frame gets exactly one answer: a painting, an error or "skipped".
"""

from __future__ import annotations

import dataclasses
import json
import struct
import time

import numpy as np

from ..demo.imaging import cv2
from ..errors import InputError
from .decode import check_ids
from .models import ServedModel

FRAME = struct.Struct("<4sIHHB3x")
PAINTING = struct.Struct("<4sIHHB3xff")
IDS, IMAGE, STYLE = b"IDS1", b"IMG1", b"STY1"
PAINTED = b"PNT1"
ENCODINGS = {"rgba": 0, "jpeg": 1, "png": 2}
JPEG_QUALITY = 90
COMMANDS = {"model": ("name",), "style": ("seed",), "encoding": ("value",)}


@dataclasses.dataclass
class Frame:
    kind: bytes
    seq: int
    model: ServedModel  # the model it was checked against (a model switch may follow it)
    labels: np.ndarray | None = None  # IDS1: (H, W) uint8 / uint16
    data: bytes | None = None  # IMG1 / STY1: the encoded picture, decoded in the worker thread
    received: float = 0.0  # perf_counter when the message arrived


def parse_frame(data: bytes, model: ServedModel, received: float | None = None) -> Frame:
    """A binary message -> a checked `Frame` for `model`; InputError names what is wrong with it.
    `received`: when it arrived (perf_counter; default now), the start of the server time it reports."""
    received = time.perf_counter() if received is None else received
    if len(data) < FRAME.size:
        raise InputError(f"a binary message is a {FRAME.size}-byte header and a payload; got {len(data)} bytes")
    kind, seq, height, width, bpi = FRAME.unpack_from(data)
    if kind not in (IDS, IMAGE, STYLE):
        raise InputError(f"unknown frame kind {kind!r}; one of {IDS!r} (label ids), {IMAGE!r} (picture), {STYLE!r}")
    payload = data[FRAME.size :]
    if kind != IDS:
        if kind == IMAGE and not model.takes_image:
            raise InputError(f"{model.name} paints label maps: send {IDS!r} frames of ids, not pictures")
        if kind == STYLE and not model.style_image:
            raise InputError(f"{model.name} takes no style picture (it has no style encoder)")
        return Frame(kind, seq, model, data=payload, received=received)
    if model.takes_image:
        raise InputError(f"{model.name} translates pictures: send {IMAGE!r} frames (a JPEG or PNG), not label ids")
    if (height, width) != (model.height, model.width):
        raise InputError(
            f"frame {seq} is {width}x{height} (WxH); {model.name} paints {model.width}x{model.height}: "
            "resample the label map when switching models"
        )
    if bpi not in (1, 2) or bpi < model.bytes_per_id:
        raise InputError(f"frame {seq}: {bpi} bytes per id; {model.name}'s ids need {model.bytes_per_id} (1 or 2)")
    if len(payload) != height * width * bpi:
        raise InputError(
            f"frame {seq}: {len(payload)} payload bytes; {height}x{width} ids of {bpi} bytes are {height * width * bpi}"
        )
    labels = np.frombuffer(payload, np.uint8 if bpi == 1 else "<u2").reshape(height, width)
    check_ids(labels, model)
    return Frame(kind, seq, model, labels=labels, received=received)


def parse_command(text: str) -> dict:
    """A JSON text message -> the command, checked for its type and fields."""
    try:
        command = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"a text message must be a JSON command: {e}") from None
    if not isinstance(command, dict) or "type" not in command:
        raise InputError(f'a command is a JSON object with a "type": one of {", ".join(COMMANDS)}; got {text[:80]!r}')
    if command["type"] not in COMMANDS:
        raise InputError(f"unknown command {command['type']!r}; the commands are {', '.join(COMMANDS)}")
    missing = [f for f in COMMANDS[command["type"]] if f not in command]
    if missing:
        raise InputError(f"the {command['type']!r} command needs the field(s) {', '.join(missing)}")
    return command


def encode_painting(seq: int, image: np.ndarray, encoding: str, engine_ms: float, received: float) -> bytes:
    """The painting message; its server time runs from `received` (perf_counter) to the end of encoding."""
    h, w = image.shape[:2]
    if encoding == "rgba":  # no encoding at all: the page hands the bytes to putImageData
        body = cv2().cvtColor(image, cv2().COLOR_RGB2RGBA).tobytes()
    elif encoding == "jpeg":
        body = cv2().imencode(".jpg", image[..., ::-1], [cv2().IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
    else:
        body = cv2().imencode(".png", image[..., ::-1], [cv2().IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
    server_ms = (time.perf_counter() - received) * 1000
    return PAINTING.pack(PAINTED, seq, h, w, ENCODINGS[encoding], engine_ms, server_ms) + body


def error(seq: int | None, e: Exception) -> dict:
    """The error message for frame `seq` (None: a command); `error` names the rtgan error type."""
    kind = "InputError" if isinstance(e, InputError) else type(e).__name__  # not the web layer's subclasses
    return {"type": "error", "seq": seq, "error": kind, "message": str(e)}
