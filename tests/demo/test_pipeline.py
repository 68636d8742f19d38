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


def drain(pipeline, timeout=10.0):
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
    assert box.get(5) is None and time.monotonic() - t < 1  # closed: no waiting


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
    assert pipeline.stop(2.0) and source.closed
    for p, _ in got:
        assert set(p.ms) == {"capture", "segment", "paint"} and (p.painting == p.labels).all()


def test_slow_stage_drops_frames_instead_of_building_lag():
    # the source makes 200 fps, painting takes 40 ms: latency must stay near one paint time, not grow
    pipeline = Pipeline(Counter(fps=200), passthrough, paint(0.04)).start()
    got = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        p = pipeline.get(0.05)
        if p is not None:
            got.append((time.perf_counter() - p.captured) * 1e3)
    assert pipeline.stop(2.0)
    assert len(got) >= 15
    assert max(got[len(got) // 2 :]) < 150  # bounded: ~40 ms paint + at most a frame's wait
    assert np.median(got[len(got) // 2 :]) <= np.median(got[: len(got) // 2]) + 20  # not growing
    assert pipeline.dropped["paint"] > 100


def test_stage_error_stops_the_pipeline_and_is_reported():
    def broken(packet):
        if packet.index >= 3:
            raise ValueError("bad frame 3")
        return packet

    pipeline = Pipeline(Counter(fps=0), broken, paint()).start()
    drain(pipeline, timeout=5)
    assert pipeline.finished
    stage, error = pipeline.error
    assert stage == "segment" and "bad frame 3" in str(error)
    assert pipeline.stop(2.0)


def test_stop_does_not_hang_with_a_slow_stage_and_reports_stuck_ones():
    pipeline = Pipeline(Counter(fps=100), passthrough, paint(0.2)).start()
    time.sleep(0.3)
    t = time.monotonic()
    assert pipeline.stop(2.0)
    assert time.monotonic() - t < 1.0
    gate = threading.Event()
    stuck = Pipeline(Counter(fps=100), lambda p: gate.wait(10) and p, paint()).start()
    time.sleep(0.1)
    assert stuck.stop(0.2) is False  # a call that never returns is reported, not waited on forever
    gate.set()


def test_pause_stops_new_frames():
    pipeline = Pipeline(Counter(fps=100), passthrough, paint()).start()
    time.sleep(0.2)
    pipeline.paused.set()
    time.sleep(0.1)
    while pipeline.get(0.05) is not None:
        pass
    assert pipeline.get(0.3) is None
    pipeline.paused.clear()
    assert pipeline.get(1.0) is not None
    assert pipeline.stop(2.0)


@pytest.mark.parametrize("fps", [50.0])
def test_capture_paces_sources_with_a_frame_rate(fps):
    source = Counter(fps=fps)
    pipeline = Pipeline(source, passthrough, paint()).start()
    time.sleep(0.5)
    pipeline.stop(2.0)
    assert 0.5 * fps * 0.5 <= source.i <= 0.5 * fps * 1.3 + 2
