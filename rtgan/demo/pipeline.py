"""Capture -> segment -> paint as threads joined by one-slot, latest-frame-wins mailboxes.

A slow stage never builds a queue: a newer frame replaces the unread one (counted as dropped), so
what is shown is always the freshest frame the slowest stage could finish, and lag cannot grow.
The display stage is the caller's thread (GUI toolkits want the main thread): it takes finished
packets with `get()`. Per-stage times go into fixed-size ring buffers, so a long run does not grow.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

import numpy as np

STAGES = ("capture", "segment", "paint", "display")


@dataclasses.dataclass
class Packet:
    index: int
    captured: float  # perf_counter() when the frame came in
    image: np.ndarray | None = None  # camera/video frame, uint8 RGB (None for label sources)
    labels: np.ndarray | None = None
    painting: np.ndarray | None = None
    model: str = ""
    inputs: dict = dataclasses.field(default_factory=dict)  # what Engine.run took besides labels/source
    ms: dict[str, float] = dataclasses.field(default_factory=dict)


class Latest:
    """One-slot mailbox. `put` replaces an unread item; `get` waits; `close` wakes and ends readers."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self.closed = False
        self.dropped = 0

    def put(self, item) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def get(self, timeout: float):
        """The newest item, or None after `timeout` (or at once when closed and empty)."""
        with self._cond:
            if self._item is None and not self.closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        with self._cond:
            return self.closed and self._item is None


class Ring:
    """The last `n` float samples, in a preallocated array."""

    def __init__(self, n: int = 4096):
        self.data = np.zeros(n)
        self.count = 0

    def add(self, value: float) -> None:
        self.data[self.count % len(self.data)] = value
        self.count += 1

    def values(self) -> np.ndarray:
        return self.data[: min(self.count, len(self.data))]


class Stats:
    """Per-stage milliseconds, end-to-end latency (frame in -> frame shown) and shown-frame rate."""

    def __init__(self):
        self.ms = {name: Ring() for name in STAGES}
        self.latency = Ring()
        self.shown_at = Ring(256)
        self.shown = 0
        self.started = time.perf_counter()

    def record(self, packet: Packet, shown: float) -> None:
        for name, ms in packet.ms.items():
            self.ms[name].add(ms)
        self.latency.add((shown - packet.captured) * 1e3)
        self.shown_at.add(shown)
        self.first_shown = shown if self.shown == 0 else self.first_shown
        self.shown += 1

    def fps(self, window: float = 1.0) -> float:
        """Frames shown per second over the last `window` seconds."""
        t = self.shown_at.values()
        now = time.perf_counter()
        recent = t[t > now - window]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent.max() - recent.min(), 1e-6)

    def summary(self) -> dict:
        """Medians and 90th percentiles over the last 4096 frames; fps over the whole run."""
        out: dict = {"frames_shown": self.shown, "wall_s": round(time.perf_counter() - self.started, 3)}
        if self.shown >= 2:
            out["fps"] = round((self.shown - 1) / (self.shown_at.values().max() - self.first_shown), 2)
        for name, ring in [*self.ms.items(), ("end_to_end", self.latency)]:
            v = ring.values()
            if len(v):
                out[f"{name}_ms"] = {
                    "median": round(float(np.median(v)), 2),
                    "p90": round(float(np.percentile(v, 90)), 2),
                }
        return out


class Pipeline:
    """`Pipeline(source, segment, paint).start()`; then `get()` painted packets until `finished`.

    `segment(packet)` and `paint(packet)` fill in `labels` and `painting`. A stage that raises stops
    the pipeline; the error is kept in `error` as (stage, exception) for the caller to report.
    """

    def __init__(self, source, segment: Callable[[Packet], Packet], paint: Callable[[Packet], Packet]):
        self.source = source
        self._to_segment, self._to_paint, self._to_show = Latest(), Latest(), Latest()
        self._stop = threading.Event()
        self.paused = threading.Event()
        self.error: tuple[str, BaseException] | None = None
        self.ended: str | None = None  # why the source stopped, when it did
        self._threads = [
            threading.Thread(target=self._capture, name="capture", daemon=True),
            threading.Thread(
                target=self._work, args=("segment", segment, self._to_segment, self._to_paint), daemon=True
            ),
            threading.Thread(target=self._work, args=("paint", paint, self._to_paint, self._to_show), daemon=True),
        ]
        for t in self._threads:
            t.name = f"rtgan-{t.name}"

    def start(self) -> "Pipeline":
        for t in self._threads:
            t.start()
        return self

    def get(self, timeout: float = 0.05) -> Packet | None:
        return self._to_show.get(timeout)

    @property
    def finished(self) -> bool:
        """True once nothing more will come: the source ended and every stage drained, or an error."""
        return self._to_show.finished

    @property
    def dropped(self) -> dict[str, int]:
        return {"segment": self._to_segment.dropped, "paint": self._to_paint.dropped, "display": self._to_show.dropped}

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every stage and wait for them; False if a stage is stuck in a call past `timeout`."""
        self._stop.set()
        for box in (self._to_segment, self._to_paint, self._to_show):
            box.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = any(t.is_alive() for t in self._threads)
        if not self._threads[0].is_alive():
            self.source.close()  # a source blocked in read() is closed by the process exit instead
        return not stuck

    def _fail(self, stage: str, error: BaseException) -> None:
        if self.error is None:
            self.error = (stage, error)
        self._stop.set()
        for box in (self._to_segment, self._to_paint, self._to_show):
            box.close()

    def _capture(self) -> None:
        fps = getattr(self.source, "fps", None)
        tick = time.perf_counter()
        index = 0
        try:
            while not self._stop.is_set():
                if fps:  # pace files and scenes like a live feed; never bank time to catch up with
                    now = time.perf_counter()
                    if tick > now:
                        self._stop.wait(tick - now)
                    tick = max(tick + 1 / fps, time.perf_counter())
                t0 = time.perf_counter()
                frame = self.source.read()
                if frame is None:
                    self.ended = "end of stream"
                    break
                if self.paused.is_set():
                    continue
                packet = Packet(index, t0)
                if self.source.kind == "labels":
                    packet.labels = frame
                else:
                    packet.image = frame
                packet.ms["capture"] = (time.perf_counter() - t0) * 1e3
                self._to_segment.put(packet)
                index += 1
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self._fail("capture", e)
        finally:
            self._to_segment.close()

    def _work(self, name: str, fn, inbox: Latest, outbox: Latest) -> None:
        try:
            while not self._stop.is_set():
                packet = inbox.get(0.1)
                if packet is None:
                    if inbox.finished:
                        break
                    continue
                t0 = time.perf_counter()
                packet = fn(packet)
                packet.ms[name] = (time.perf_counter() - t0) * 1e3
                outbox.put(packet)
        except BaseException as e:  # noqa: BLE001
            self._fail(name, e)
        finally:
            outbox.close()
