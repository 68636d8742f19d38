"""Load on the web studio: N WebSocket clients at once, then a graceful shutdown with them connected.

    python benchmarks/web_load.py                       # 8 clients, 60 s, landscape-asapnet at 256x256
    python benchmarks/web_load.py -n 4 -t 10 --model landscape-spade

Starts `python -m rtgan.web` as a process of its own on a free port. Each client (the `websockets`
package) sends a label-id frame as soon as its previous answer arrives, as the page does, for T
seconds; the server's RSS is sampled every second. Then the server gets SIGINT (or --signal TERM)
while every client is still connected and sending: it must exit within a few seconds and every
client must see its connection close (no hang). Everything is bounded: clients time out, the
server is killed if it overstays. Prints markdown tables and the command line; exits 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np

FRAME_KIND, PAINTING_HEADER = b"IDS1", 24
RECV_TIMEOUT = 30  # s: an answer later than this is a hang, counted as an error
EXIT_LIMIT = 10  # s: the server must be gone this long after the signal (it allows itself 3)


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        import psutil  # not Linux

        return psutil.Process(pid).memory_info().rss / 2**20


def frames(height: int, width: int, count: int = 8) -> list[bytes]:
    """A few different landscapes, so the server paints changing maps as while drawing."""
    import struct

    from rtgan.data import landscapes

    head = struct.Struct("<4sIHHB3x")
    return [
        head.pack(FRAME_KIND, 0, height, width, 1) + landscapes.layout(s, height, width).tobytes() for s in range(count)
    ]


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "rtgan.web", "--port", "0", "--log-level", "warning", "--model", args.model]
    cmd += ["--size", args.size] + (["--threads", str(args.threads)] if args.threads else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # "rtgan web studio: http://127.0.0.1:PORT/  (models: ...)"
        if m := re.search(r"(http://\S+)", line):
            return proc, m.group(1).replace("http://", "ws://") + "v1/ws"
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit(f"the server did not start: {' '.join(cmd)}")


class Client:
    def __init__(self, number: int):
        self.number = number
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.closed_after: float | None = None  # s from the signal until this client saw the close
        self.close_code: int | None = None

    async def run(self, url: str, payloads: list[bytes], stop_at: float, signalled: asyncio.Event, state: dict):
        import websockets

        try:
            async with websockets.connect(url, max_size=None, compression=None, open_timeout=30) as ws:
                ready = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
                assert ready["type"] == "ready", ready
                seq = 0
                while True:  # past stop_at too: the shutdown must find every client sending
                    seq += 1
                    frame = bytearray(payloads[(seq + self.number) % len(payloads)])
                    frame[4:8] = seq.to_bytes(4, "little")
                    start = time.perf_counter()
                    await ws.send(bytes(frame))
                    answer = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
                    if isinstance(answer, str):
                        self.errors.append(answer[:200])
                    elif time.monotonic() < stop_at:
                        assert answer[:4] == b"PNT1" and int.from_bytes(answer[4:8], "little") == seq
                        self.latencies.append((time.perf_counter() - start) * 1000)
        except websockets.ConnectionClosed as e:
            if not signalled.is_set():
                self.errors.append(f"closed before the shutdown: {e}")
            self.close_code = e.rcvd.code if e.rcvd else None
        except (asyncio.TimeoutError, OSError, AssertionError) as e:
            self.errors.append(f"{type(e).__name__}: {e}")
        if signalled.is_set():
            self.closed_after = time.monotonic() - state["signal_at"]


async def sample_rss(pid: int, into: list[float], done: asyncio.Event) -> None:
    while not done.is_set():
        into.append(rss_mb(pid))
        try:
            await asyncio.wait_for(done.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def session(args, proc: subprocess.Popen, url: str) -> tuple[list[Client], list[float], dict]:
    h, w = (int(v) for v in args.size.split("x"))
    payloads = frames(h, w)
    clients = [Client(i) for i in range(args.clients)]
    signalled, sampled = asyncio.Event(), asyncio.Event()
    state: dict = {}
    rss: list[float] = []
    sampler = asyncio.create_task(sample_rss(proc.pid, rss, sampled))
    stop_at = time.monotonic() + args.seconds
    tasks = [asyncio.create_task(c.run(url, payloads, stop_at, signalled, state)) for c in clients]
    await asyncio.sleep(args.seconds)
    sampled.set()
    await sampler
    state["signal_at"] = time.monotonic()
    signalled.set()
    proc.send_signal(signal.SIGINT if args.signal == "INT" else signal.SIGTERM)
    done, pending = await asyncio.wait(tasks, timeout=EXIT_LIMIT + RECV_TIMEOUT)
    for t in pending:  # a client that never saw its connection close: a hang
        t.cancel()
    state["hung"] = len(pending)
    try:
        code = await asyncio.to_thread(proc.wait, EXIT_LIMIT)
        state["exit"] = (code, time.monotonic() - state["signal_at"])
    except subprocess.TimeoutExpired:
        proc.kill()
        state["exit"] = (None, None)
    return clients, rss, state


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--clients", type=int, default=8)
    ap.add_argument("-t", "--seconds", type=float, default=60)
    ap.add_argument("--model", default="landscape-asapnet")
    ap.add_argument("--size", default="256x256")
    ap.add_argument("--threads", type=int, help="engine threads (default: the runtime's)")
    ap.add_argument("--signal", choices=["INT", "TERM"], default="INT", help="how the server is stopped")
    args = ap.parse_args()
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 3600:
        ap.error("clients in 1..256, seconds in (0, 3600]")

    proc, url = start_server(args)
    try:
        clients, rss, state = asyncio.run(session(args, proc, url))
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"`{shlex.join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])}`  ({os.cpu_count()} CPUs; {args.model} "
          f"{args.size}, {args.clients} clients for {args.seconds:g} s)\n")  # fmt: skip
    print("| client | frames | frames/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    for c in clients:
        n = len(c.latencies)
        print(f"| {c.number} | {n} | {n / args.seconds:.1f} | {pct(c.latencies, 50):.1f} | "
              f"{pct(c.latencies, 99):.1f} | {len(c.errors)} |")  # fmt: skip
    every = [v for c in clients for v in c.latencies]
    errors = [e for c in clients for e in c.errors]
    print(f"| **all** | {len(every)} | {len(every) / args.seconds:.1f} | {pct(every, 50):.1f} | {pct(every, 99):.1f} "
          f"| {len(errors)} |\n")  # fmt: skip
    code, seconds = state["exit"]
    closes = sorted(c.close_code for c in clients if c.closed_after is not None)
    slowest = max((c.closed_after for c in clients if c.closed_after is not None), default=float("nan"))
    warm = rss[min(2, len(rss) - 1)]  # the first frames allocate the engine's buffers; stable means end ~ this
    print(
        "| server RSS MB at 0 s | at 2 s | end | max | shutdown: exit code | seconds to exit | clients closed | "
        "slowest close s | close codes | clients hung |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    print(f"| {rss[0]:.0f} | {warm:.0f} | {rss[-1]:.0f} | {max(rss):.0f} | {code} | "
          f"{'killed' if seconds is None else f'{seconds:.2f}'} | {len(closes)}/{len(clients)} | {slowest:.2f} | "
          f"{', '.join(map(str, sorted(set(closes))))} | {state['hung']} |")  # fmt: skip
    for e in errors[:5]:
        print(f"error: {e}", file=sys.stderr)
    failed = errors or state["hung"] or seconds is None or len(closes) != len(clients)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
