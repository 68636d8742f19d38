"""The studio's WebSocket protocol (`/v1/ws`): binary frames in, binary paintings out, JSON for the rest.

Client -> server, binary: a 16-byte little-endian header, then the payload.

    offset  size  field
    0       4     kind: b"IDS1" label ids | b"IMG1" a picture (image-to-image models) | b"STY1" a style image
                  | b"STR1" a style image for one class (SEAN) | b"RGN1" a noise-region map (local noise)
                  | b"GEN1" paint (models without a label map: StyleGAN)
    4       4     seq (uint32, chosen by the client; echoed in the answer)
    8       2     height (IDS1, RGN1) | the class id (STR1) | 0
    10      2     width   (IDS1, RGN1; 0 otherwise)
    12      1     bytes per id: 1 (uint8) or 2 (uint16, little-endian) (IDS1, RGN1; 0 otherwise)
    13      3     reserved, zero
    16      ...   IDS1 / RGN1: height * width ids, row-major; IMG1 / STY1 / STR1: a JPEG or PNG file;
                  GEN1: nothing (the connection's z), or a walk step: seed from (uint64), seed to
                  (uint64), t (float32 in [0, 1]): z = `models.walk_z(from, to, t)`

IDS1, IMG1 and GEN1 frames are painted (newest wins); the others change what later frames are painted
with and are acknowledged in JSON: STY1 / STR1 "style", RGN1 "regions". A SEAN model's STY1 picture
gives every class its code, pooled over the label map of the last IDS1 frame (the picture resized to
the model's size); an STR1 picture gives its class its code (the whole picture pooled as that class).
An RGN1 map holds region ids in [0, M) of the model's `noise_regions` input (M in /v1/models):
region 0 paints with the connection's z, region r with the z of the last "noise" command for r.

Client -> server, JSON text: {"type": "model", "name": NAME} | {"type": "style", "seed": INT or null
(random)} | {"type": "encoding", "value": "rgba" | "jpeg" | "png"} | {"type": "scalar", "name": NAME,
"value": NUMBER} (a scalar input, e.g. StyleGAN's truncation, in [low, high] of /v1/models) |
{"type": "noise", "region": R, "seed": INT or null} (local noise: region R in 1..M-1 takes
z = `models.style_z(seed)`; null draws a seed).

Server -> client, binary: a painting, a 24-byte header, then the image.

    0   4  b"PNT1"          4   4  seq (of the frame painted)
    8   2  height           10  2  width
    12  1  encoding: 0 raw RGBA (height * width * 4 bytes, for putImageData), 1 JPEG, 2 PNG
    13  3  reserved         16  4  engine ms (float32: Engine.run alone)
    20  4  server ms (float32: from the frame's arrival to this send: checks, waiting, run, encoding)

Server -> client, JSON text: "ready" (on connect), "model", "style", "encoding", "scalar", "noise",
"regions" (acknowledgements: "style" and "noise" tell the seed drawn), "error" {seq, error, message},
"skipped" {seq} (a newer frame replaced it before it was painted).
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
WALK = struct.Struct("<QQf")
IDS, IMAGE, STYLE = b"IDS1", b"IMG1", b"STY1"
REGION_STYLE, REGIONS, GENERATE = b"STR1", b"RGN1", b"GEN1"
KINDS = (IDS, IMAGE, STYLE, REGION_STYLE, REGIONS, GENERATE)
PAINTED = b"PNT1"
ENCODINGS = {"rgba": 0, "jpeg": 1, "png": 2}
JPEG_QUALITY = 90
COMMANDS = {"model": ("name",), "style": ("seed",), "encoding": ("value",), "scalar": ("name", "value"),
            "noise": ("region", "seed")}  # fmt: skip
MAX_SEED = 2**63 - 1


@dataclasses.dataclass
class Frame:
    kind: bytes
    seq: int
    model: ServedModel  # the model it was checked against (a model switch may follow it)
    labels: np.ndarray | None = None  # IDS1: (H, W) uint8 / uint16; RGN1: (H, W) int32 region ids
    data: bytes | None = None  # IMG1 / STY1 / STR1: the encoded picture, decoded in the worker thread
    received: float = 0.0  # perf_counter when the message arrived
    klass: int | None = None  # STR1: the class its picture styles
    walk: tuple[int, int, float] | None = None  # GEN1: (seed from, seed to, t), or None: the connection's z


def parse_frame(data: bytes, model: ServedModel, received: float | None = None) -> Frame:
    """A binary message -> a checked `Frame` for `model`; InputError names what is wrong with it.
    `received`: when it arrived (perf_counter; default now), the start of the server time it reports."""
    received = time.perf_counter() if received is None else received
    if len(data) < FRAME.size:
        raise InputError(f"a binary message is a {FRAME.size}-byte header and a payload; got {len(data)} bytes")
    kind, seq, height, width, bpi = FRAME.unpack_from(data)
    if kind not in KINDS:
        raise InputError(
            f"unknown frame kind {kind!r}; one of {IDS!r} (label ids), {IMAGE!r} (picture), {STYLE!r}, "
            f"{REGION_STYLE!r} (style pictures), {REGIONS!r} (noise regions), {GENERATE!r} (paint without labels)"
        )
    payload = data[FRAME.size :]
    if kind == GENERATE:
        return _generate(seq, payload, model, received)
    if model.input == "latent" and kind in (IDS, IMAGE):
        raise InputError(f"{model.name} paints without a label map or picture: send {GENERATE!r} frames")
    if kind in (IMAGE, STYLE, REGION_STYLE):
        if kind == IMAGE and not model.takes_image:
            raise InputError(f"{model.name} paints label maps: send {IDS!r} frames of ids, not pictures")
        if kind == STYLE and not model.style_image:
            raise InputError(f"{model.name} takes no style picture (it has no style encoder)")
        if kind == REGION_STYLE:
            if not model.region_styles:
                raise InputError(f"{model.name} takes no style picture per class (not a SEAN model with an encoder)")
            if not model.allowed[height]:
                raise InputError(f"frame {seq}: class {height} is not one of {model.name}'s classes")
            return Frame(kind, seq, model, data=payload, received=received, klass=height)
        return Frame(kind, seq, model, data=payload, received=received)
    if kind == REGIONS:
        return _regions(seq, height, width, bpi, payload, model, received)
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


def _generate(seq: int, payload: bytes, model: ServedModel, received: float) -> Frame:
    if model.input != "latent":
        raise InputError(
            f"{model.name} paints a {model.input} input: send {IDS if model.input == 'labels' else IMAGE!r} frames"
        )
    if not payload:
        return Frame(GENERATE, seq, model, received=received)
    if len(payload) != WALK.size:
        raise InputError(
            f"frame {seq}: a {GENERATE!r} payload is empty or a {WALK.size}-byte walk step (seed from, seed to, t); "
            f"got {len(payload)} bytes"
        )
    a, b, t = WALK.unpack(payload)
    if not (np.isfinite(t) and 0 <= t <= 1) or max(a, b) > MAX_SEED:
        raise InputError(f"frame {seq}: a walk step is two seeds in 0..2**63-1 and t in [0, 1], got {a}, {b}, {t}")
    if not model.style:
        raise InputError(f"{model.name} has no latent input to walk")
    return Frame(GENERATE, seq, model, received=received, walk=(a, b, float(t)))


def _regions(seq: int, height: int, width: int, bpi: int, payload: bytes, model: ServedModel, received) -> Frame:
    if model.regions is None:
        raise InputError(
            f"{model.name} has no local noise (no noise_regions input: export it with --set noise_regions=M)"
        )
    m = int(model.regions.classes)
    if (height, width) != (model.height, model.width):
        raise InputError(
            f"frame {seq}: a {width}x{height} (WxH) region map; {model.name} paints {model.width}x{model.height}"
        )
    if bpi not in (1, 2) or len(payload) != height * width * bpi:
        raise InputError(
            f"frame {seq}: {len(payload)} payload bytes at {bpi} bytes per id; a region map is {height}x{width} "
            "ids of 1 or 2 bytes"
        )
    ids = np.frombuffer(payload, np.uint8 if bpi == 1 else "<u2").reshape(height, width)
    if ids.max() >= m:
        y, x = divmod(int(np.argmax(ids >= m)), width)
        raise InputError(
            f"frame {seq}: region {int(ids[y, x])} at (x={x}, y={y}); {model.name}'s regions are 0..{m - 1}"
        )
    return Frame(REGIONS, seq, model, labels=ids.astype(np.int32), received=received)


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
