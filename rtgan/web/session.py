"""One WebSocket connection: its model, style, other inputs and pending frame; the engines are the studio's.

Two tasks per connection: the receiver reads and checks every message at once (so an error names
the frame it belongs to), the painter paints the newest checked frame in a worker thread (the
event loop stays free for other connections). Between them sits a slot of one: a frame that
arrives while another is painted replaces the one waiting, so a client that sends faster than the
engine paints gets the newest state painted next, never a queue of stale ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import time
from urllib.parse import urlsplit

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..errors import InputError, RtganError
from . import protocol
from .decode import any_picture, picture
from .models import Controls, ServedModel, Studio, walk_z

log = logging.getLogger("rtgan.web")


class PendingSlot:
    """Newest wins: holds at most one item; `put` replaces (and returns) the one waiting, `take` waits."""

    def __init__(self):
        self._item = None
        self._ready = asyncio.Event()

    def put(self, item):
        replaced, self._item = self._item, item
        self._ready.set()
        return replaced

    def clear(self):
        replaced, self._item = self._item, None
        self._ready.clear()
        return replaced

    async def take(self):
        while self._item is None:
            await self._ready.wait()
        item, self._item = self._item, None
        self._ready.clear()
        return item


@dataclasses.dataclass
class Painted:
    """What `create_app(on_frame=...)` is told after each painting sent on a socket."""

    connection: int
    seq: int
    model: str
    labels: np.ndarray | None  # the ids painted (label-map models)
    source: np.ndarray | None  # the picture painted, at the model's size (image-to-image models)
    painting: np.ndarray
    z: np.ndarray | None = None  # the style input painted with (z, a style code, SEAN's codes)
    inputs: dict | None = None  # the other inputs painted with, by name (noise, truncation, regions, ...)


class Connection:
    def __init__(self, ws: WebSocket, studio: Studio):
        self.ws, self.studio = ws, studio
        self.id = studio.next_connection()
        self.model: ServedModel = studio.get(None)
        self.seed = secrets.randbits(32)  # each tab its own style until the user picks one
        self.controls: Controls = self.model.controls(self.seed)
        self.labels = None  # the ids of the last IDS1 frame: SEAN's whole-painting style picture pools over them
        self.encoding = "rgba"
        self.slot = PendingSlot()
        self._send = asyncio.Lock()  # the receiver (errors, acks) and the painter both send

    async def run(self) -> None:
        origin = self.ws.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != self.ws.headers.get("host"):
            # a page of another site opening a socket to this one (browsers let any page try): refused
            await self.ws.close(code=1008, reason="cross-origin WebSocket refused")
            return
        await self.ws.accept()
        painter = asyncio.create_task(self._paint_loop())
        try:
            await self._send_json(
                {"type": "ready", "connection": self.id, "model": self.model.name, "models": list(self.studio.models),
                 **self._style(), "encodings": list(protocol.ENCODINGS), "max_message": self.studio.max_message}
            )  # fmt: skip
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                await self._handle(message)
        except WebSocketDisconnect:
            return
        finally:
            painter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await painter

    async def _handle(self, message: dict) -> None:
        received = time.perf_counter()
        data, text = message.get("bytes"), message.get("text")
        seq = protocol.FRAME.unpack_from(data)[1] if data and len(data) >= protocol.FRAME.size else None
        size = len(data) if data is not None else len((text or "").encode())
        try:
            if size > self.studio.max_message:
                raise InputError(f"a message of {size} bytes is above the limit of {self.studio.max_message} bytes")
            if data is not None:
                await self._frame(protocol.parse_frame(data, self.model, received))
            else:
                await self._command(protocol.parse_command(text or ""))
        except RtganError as e:
            await self._send_json(protocol.error(seq, e))
        except Exception as e:  # a bug must cost one message, never the connection or a traceback to the client
            log.exception("connection %d: message failed", self.id)
            failed = RuntimeError(f"the server failed on this message ({type(e).__name__})")
            await self._send_json(protocol.error(seq, failed))

    @property
    def z(self):
        return self.controls.z

    async def _frame(self, frame: protocol.Frame) -> None:
        model = frame.model
        if frame.kind == protocol.STYLE and model.styles is not None:  # SEAN: every class's code from one picture
            if self.labels is None:
                raise InputError("send the label map (an IDS1 frame) before a style picture for the whole painting")
            labels = self.labels
            codes = await asyncio.to_thread(lambda: model.encode_codes(picture(frame.data, model), labels))
            if model is self.model:
                self.controls.z = codes
                await self._send_json({"type": "style", "seq": frame.seq, "source": "image", "seed": None})
            return
        if frame.kind == protocol.STYLE:
            style = await asyncio.to_thread(lambda: model.encode_style(any_picture(frame.data)))
            if model is self.model:
                self.controls.z = style
                await self._send_json({"type": "style", "seq": frame.seq, "source": "image", "seed": None})
            return
        if frame.kind == protocol.REGION_STYLE:  # SEAN: one class's code, the whole picture pooled as that class
            k = frame.klass
            whole = np.full((model.height, model.width), k, np.int32)
            codes = await asyncio.to_thread(lambda: model.encode_codes(picture(frame.data, model), whole))
            if model is self.model:
                self.controls.z = self.controls.z.copy()
                self.controls.z[k] = codes[k]
                await self._send_json(
                    {"type": "style", "seq": frame.seq, "source": "image", "class": k, "seed": None}
                )  # fmt: skip
            return
        if frame.kind == protocol.REGIONS:
            if model is self.model:
                self.controls.regions = frame.labels
            await self._send_json({"type": "regions", "seq": frame.seq})
            return
        if frame.kind == protocol.IDS:
            self.labels = frame.labels
        replaced = self.slot.put(frame)
        if replaced is not None:
            await self._send_json({"type": "skipped", "seq": replaced.seq})

    async def _command(self, command: dict) -> None:
        kind = command["type"]
        if kind == "model":
            model = self.studio.get(str(command["name"]))
            replaced = self.slot.clear()  # checked against the old model's size and classes
            if replaced is not None:
                await self._send_json({"type": "skipped", "seq": replaced.seq})
            self.model, self.controls, self.labels = model, model.controls(self.seed), None
            await self._send_json({"type": "model", "model": model.name, **self._style()})
        elif kind == "style":
            if not self.model.style:
                raise InputError(f"{self.model.name} has no style to change (neither a VAE nor a style code)")
            self.seed = _seed(command["seed"], "a style seed")
            self.controls.reseed(self.seed)
            await self._send_json({"type": "style", "source": "seed", **self._style()})
        elif kind == "scalar":
            value = self.controls.set_scalar(str(command["name"]), command["value"])
            await self._send_json({"type": "scalar", "name": command["name"], "value": value})
        elif kind == "noise":
            model, region = self.model, command["region"]
            if model.regions is None:
                raise InputError(f"{model.name} has no local noise (no noise_regions input)")
            m = int(model.regions.classes)
            if not isinstance(region, int) or isinstance(region, bool) or not 1 <= region < m:
                raise InputError(f"a noise region is an integer in 1..{m - 1} (0 is the image's own z), got {region!r}")
            seed = _seed(command["seed"], "a noise seed")
            self.controls.set_region(region, seed)
            await self._send_json({"type": "noise", "region": region, "seed": seed})
        else:
            if command["value"] not in protocol.ENCODINGS:
                raise InputError(f"unknown encoding {command['value']!r}; one of {', '.join(protocol.ENCODINGS)}")
            self.encoding = command["value"]
            await self._send_json({"type": "encoding", "value": self.encoding})

    def _style(self) -> dict:
        return {"seed": self.seed if self.model.style else None}

    async def _paint_loop(self) -> None:
        while True:
            frame = await self.slot.take()
            model = frame.model
            controls = self.controls if model is self.model else model.controls(self.seed)
            z = controls.z
            if frame.walk is not None:
                z = walk_z(*frame.walk, model.style_size)
            inputs = controls.inputs()
            try:
                source, painting, data = await asyncio.to_thread(self._paint, frame, z, inputs, self.encoding)
            except RtganError as e:
                await self._send_json(protocol.error(frame.seq, e))
                continue
            except Exception as e:
                log.exception("connection %d: painting frame %d failed", self.id, frame.seq)
                await self._send_json(protocol.error(frame.seq, RuntimeError(f"painting failed ({type(e).__name__})")))
                continue
            if self.studio.on_frame is not None:
                try:
                    self.studio.on_frame(
                        Painted(self.id, frame.seq, model.name, frame.labels, source, painting, z, inputs)
                    )
                except Exception:
                    log.exception("on_frame failed")
            await self._send_bytes(data)

    def _paint(self, frame: protocol.Frame, z, inputs: dict, encoding: str):
        """In a worker thread: decode, paint, encode. (source, painting, the message to send)"""
        model = frame.model
        source = picture(frame.data, model) if frame.kind == protocol.IMAGE else None
        painting, engine_ms = model.paint(frame.labels, source, z, inputs)
        return source, painting, protocol.encode_painting(frame.seq, painting, encoding, engine_ms, frame.received)

    async def _send_json(self, message: dict) -> None:
        await self._send_message({"type": "websocket.send", "text": json.dumps(message)})

    async def _send_bytes(self, data: bytes) -> None:
        await self._send_message({"type": "websocket.send", "bytes": data})

    async def _send_message(self, message: dict) -> None:
        async with self._send:
            if self.ws.application_state == WebSocketState.CONNECTED:
                # a client gone mid-send: the receiver sees the disconnect and ends the connection
                with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                    await self.ws.send(message)


def _seed(seed, what: str) -> int:
    """A seed from a command: an integer in 0..2**63-1, or null for a random one."""
    if seed is None:
        return secrets.randbits(32)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= protocol.MAX_SEED:
        raise InputError(f"{what} is an integer in 0..2**63-1 or null (random), got {seed!r}")
    return seed


async def endpoint(ws: WebSocket) -> None:
    await Connection(ws, ws.app.state.studio).run()
