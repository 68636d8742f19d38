"""The threaded pipeline: latest-frame-wins, bounded lag with a slow stage, clean ends and errors."""

import threading
import time

import numpy as np
import pytest

from rtgan.demo.pipeline import Latest, Pipeline, Ring


class Counter:
    """A label source that counts frames and can stop after `n`."""

    kind = "labels"

    def __init__(self, n=None, fps=200.0):
        self.n, self.fps, self.i, self.closed = n, fps, 0, False

    def read(self):
        if self.n is not None and self.i >= self.n:
            return None
        self.i += 1
        return np.full((4, 4), self.i)

    def close(self):
        self.closed = True


def passthrough(packet):
    return packet


def paint(delay=0.0):
    def fn(packet):
        time.sleep(delay)
        packet.painting = packet.labels
        return packet

    return fn


def wait_until(condition, timeout=60.0) -> None:
    """Poll `condition` until it holds; the timeout only guards against a hang (CI may be loaded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not {condition.__doc__ or 'done'} after {timeout} s"
        time.sleep(0.002)


def drain(pipeline, timeout=60.0):
    got = []
    deadline = time.monotonic() + timeout
    while not pipeline.finished and time.monotonic() < deadline:
        p = pipeline.get(0.05)
        if p is not None:
            got.append((p, time.perf_counter()))
    return got


def test_latest_keeps_only_the_newest_and_counts_drops():
    box = Latest()
    for i in range(5):
        box.put(i)
    assert box.get(0) == 4 and box.dropped == 4
    assert box.get(0.01) is None
    box.put(9)
    box.close()
    assert not box.finished and box.get(0) == 9 and box.finished
    t = time.monotonic()
    assert box.get(120) is None and time.monotonic() - t < 60  # closed: no waiting (waiting would take 120 s)


def test_ring_is_bounded():
    r = Ring(8)
    for i in range(100):
        r.add(i)
    assert r.count == 100 and sorted(r.values()) == list(range(92, 100))


def test_source_end_drains_every_stage_in_order():
    source = Counter(n=30, fps=0)
    pipeline = Pipeline(source, passthrough, paint()).start()
    got = drain(pipeline)
    assert pipeline.finished and pipeline.ended == "end of stream" and pipeline.error is None
    indices = [p.index for p, _ in got]
    assert indices == sorted(indices) and indices[-1] == 29  # the last frame is never lost
    assert pipeline.stop(60) and source.closed
    for p, _ in got:
        assert set(p.ms) == {"capture", "segment", "paint"} and (p.painting == p.labels).all()


def test_slow_stage_drops_frames_instead_of_building_lag():
    # painting lasts while the source captures 10 more frames (counted, not timed: CI may be loaded), so
    # a queue would grow by 9 frames a painting; latest-frame-wins drops them instead, and every
    # captured frame is shown, dropped or in one of the pipeline's few slots: lag cannot grow
    source, done = Counter(fps=200), threading.Event()

    def slow_paint(packet):
        while source.i < packet.index + 11 and not done.is_set():
            time.sleep(0.002)
        packet.painting = packet.labels
        return packet

    pipeline = Pipeline(source, passthrough, slow_paint).start()
    shown = []
    deadline = time.monotonic() + 60  # only a guard against a hang
    while len(shown) < 15:
        assert time.monotonic() < deadline and not pipeline.finished, (len(shown), pipeline.error)
        p = pipeline.get(0.05)
        if p is not None:
            shown.append(p.index)
    done.set()
    assert pipeline.stop(60)
    assert shown == sorted(set(shown))  # in order, none twice
    assert source.i >= shown[-1] + 11  # the last painting waited for 10 more captures
    # so 25+ frames came in for 15 shown; what was neither shown nor dropped is at most one frame in
    # each mailbox, in each stage and in capture's hand: no queue behind the slow stage
    dropped = sum(pipeline.dropped.values())
    assert dropped > 0 and source.i - len(shown) - dropped <= 6, (source.i, len(shown), pipeline.dropped)


def test_stage_error_stops_the_pipeline_and_is_reported():
    def broken(packet):
        if packet.index >= 3:
            raise ValueError("bad frame 3")
        return packet

    pipeline = Pipeline(Counter(fps=0), broken, paint()).start()
    drain(pipeline)
    assert pipeline.finished
    stage, error = pipeline.error
    assert stage == "segment" and "bad frame 3" in str(error)
    assert pipeline.stop(60)


def test_stop_does_not_hang_with_a_slow_stage_and_reports_stuck_ones():
    # stop waits for the call a stage is in, never for the frames behind it (counted, not timed)
    calls = []
    slow = paint(0.2)
    pipeline = Pipeline(Counter(fps=100), passthrough, lambda p: calls.append(p.index) or slow(p)).start()
    wait_until(lambda: len(calls) >= 2)
    before = len(calls)
    assert pipeline.stop(60)  # all stages joined (the timeout only guards against a hang)
    assert not any(t.is_alive() for t in pipeline._threads)
    assert len(calls) - before <= 1  # at most one call began after stop(), racing it: no draining
    gate, entered = threading.Event(), threading.Event()
    stuck = Pipeline(Counter(fps=100), lambda p: entered.set() or (gate.wait(120) and p), paint()).start()
    assert entered.wait(60)  # the segment stage is inside its call
    assert stuck.stop(0.2) is False  # a call that never returns is reported, not waited on forever
    gate.set()


class PausingCounter(Counter):
    """A Counter that pauses `pipeline` as it reads frame `at`: the frames before it are all there is."""

    def __init__(self, at, fps=100.0):
        super().__init__(fps=fps)
        self.at, self.pipeline = at, None

    def read(self):
        frame = super().read()
        if self.i == self.at:
            self.pipeline.paused.set()
        return frame


def test_pause_stops_new_frames():
    source = PausingCounter(at=20)
    pipeline = source.pipeline = Pipeline(source, passthrough, paint())
    pipeline.start()
    shown = 0
    # frames 1..19 went in before the pause; wait (counted, not timed) until each is shown or dropped
    deadline = time.monotonic() + 60  # only a guard against a hang
    while shown + sum(pipeline.dropped.values()) < 19:
        assert time.monotonic() < deadline, (shown, pipeline.dropped)
        shown += pipeline.get(0.05) is not None
    wait_until(lambda: source.i > 25)  # capture goes on reading while paused...
    assert pipeline.get(0.3) is None  # ...and passes nothing on
    assert shown + sum(pipeline.dropped.values()) == 19
    pipeline.paused.clear()
    assert pipeline.get(60) is not None
    assert pipeline.stop(60)


@pytest.mark.parametrize("fps", [50.0])
def test_capture_paces_sources_with_a_frame_rate(fps):
    # pacing is an upper bound on the frame rate, which a loaded machine cannot break (it only makes
    # capture slower, which no bound here is about)
    source = Counter(fps=fps)
    start = time.perf_counter()
    pipeline = Pipeline(source, passthrough, paint()).start()
    wait_until(lambda: source.i >= 10)
    assert pipeline.stop(60)
    elapsed = time.perf_counter() - start
    assert source.i <= elapsed * fps + 2  # never faster than FPS (frames are not banked to catch up)
    assert elapsed >= 9 / fps * 0.9  # 10 frames took at least 9 frame intervals
