"""One WebSocket connection: its model, style and pending frame; the engines are the studio's.

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
from .models import ServedModel, Studio

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


class Connection:
    def __init__(self, ws: WebSocket, studio: Studio):
        self.ws, self.studio = ws, studio
        self.id = studio.next_connection()
        self.model: ServedModel = studio.get(None)
        self.seed = secrets.randbits(32)  # each tab its own style until the user picks one
        self.z = self.model.z_for(self.seed)
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

    async def _frame(self, frame: protocol.Frame) -> None:
        if frame.kind == protocol.STYLE:
            style = await asyncio.to_thread(lambda: frame.model.encode_style(any_picture(frame.data)))
            if frame.model is self.model:
                self.z = style
                await self._send_json({"type": "style", "seq": frame.seq, "source": "image", "seed": None})
            return
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
            self.model, self.z = model, model.z_for(self.seed)
            await self._send_json({"type": "model", "model": model.name, **self._style()})
        elif kind == "style":
            seed = command["seed"]
            if not self.model.style:
                raise InputError(f"{self.model.name} has no style to change (neither a VAE nor a style code)")
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63):
                raise InputError(f"a style seed is an integer in 0..2**63-1 or null (random), got {seed!r}")
            self.seed = secrets.randbits(32) if seed is None else seed
            self.z = self.model.z_for(self.seed)
            await self._send_json({"type": "style", "source": "seed", **self._style()})
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
            z = self.z if model is self.model else model.z_for(self.seed)
            try:
                source, painting, data = await asyncio.to_thread(self._paint, frame, z, self.encoding)
            except RtganError as e:
                await self._send_json(protocol.error(frame.seq, e))
                continue
            except Exception as e:
                log.exception("connection %d: painting frame %d failed", self.id, frame.seq)
                await self._send_json(protocol.error(frame.seq, RuntimeError(f"painting failed ({type(e).__name__})")))
                continue
            if self.studio.on_frame is not None:
                try:
                    self.studio.on_frame(Painted(self.id, frame.seq, model.name, frame.labels, source, painting))
                except Exception:
                    log.exception("on_frame failed")
            await self._send_bytes(data)

    def _paint(self, frame: protocol.Frame, z, encoding: str):
        """In a worker thread: decode, paint, encode. (source, painting, the message to send)"""
        model = frame.model
        source = picture(frame.data, model) if frame.kind == protocol.IMAGE else None
        painting, engine_ms = model.paint(frame.labels, source, z)
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


async def endpoint(ws: WebSocket) -> None:
    await Connection(ws, ws.app.state.studio).run()
