"""Load on `python -m rtgan.serve run`: N concurrent gRPC clients for T seconds, then SIGTERM while they
are still sending.

    python benchmarks/serve_load.py                      # 8 clients, 60 s, the bundled landscape-asapnet
    python benchmarks/serve_load.py -c 4 -t 10 --server-threads 2 --json out.json

Reports total throughput, p50/p99 latency, errors (must be 0), the server's resident memory sampled every
second over its whole process tree (the PyTriton process, tritonserver and its Python backend stub):
at start, at the end of the load and the maximum, and then the graceful shutdown: seconds from SIGTERM
to exit, exit code, and what the clients saw after SIGTERM (answers still served, refusals), counted
apart from the errors. The server runs in the cached PyTriton environment (rtgan.serve.pytriton_env),
made on first use. Bounded: at most --max-requests requests, and the clients stop once the server is gone.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import numpy as np

from rtgan.data import landscapes
from rtgan.serve import Client, ServerError, ServerUnavailable, pytriton_env
from rtgan.serve.testing import ServerProcess, rss


class Load:
    """Shared counters of the client threads."""

    def __init__(self, max_requests: int):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.after = {"served": 0, "refused": 0, "other": 0}  # outcomes of requests sent after SIGTERM
        self.after_other: list[str] = []  # what "other" was, for the report
        self.sigterm_at: float | None = None
        self.left = max_requests

    def take(self) -> bool:
        with self.lock:
            self.left -= 1
            return self.left >= 0


def client_loop(url: str, model: str, labels: np.ndarray, load: Load, until: float, gone: threading.Event) -> None:
    client = Client(url, model=model, timeout=30)
    while time.monotonic() < until and not gone.is_set() and load.take():
        start = time.perf_counter()
        after = load.sigterm_at is not None
        try:
            image = client.paint(labels)
            ok = image.shape == (*labels.shape, 3)
            outcome = "served" if ok else "other"
        except ServerUnavailable:
            outcome = "refused"
        except ServerError as e:  # the server answered with an error: shutting down, or a real failure
            outcome = "refused" if after and "exiting" in str(e).lower() else f"error: {e}"
        except Exception as e:  # anything else is a failure of the server or the client
            outcome = f"error: {type(e).__name__}: {e}"
        with load.lock:
            if after:
                load.after[outcome if outcome in load.after else "other"] += 1
                if outcome not in load.after and len(load.after_other) < 3:
                    load.after_other.append(outcome[:300])
            elif outcome == "served":
                load.latencies.append(time.perf_counter() - start)
            else:
                load.errors.append(outcome if outcome.startswith("error") else f"{outcome} before SIGTERM")
        if after and outcome == "refused":
            time.sleep(0.05)  # keep knocking until the server is gone, without spinning
    client.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="landscape-asapnet", help="bundled model or artifact directory")
    ap.add_argument("-c", "--clients", type=int, default=8)
    ap.add_argument("-t", "--seconds", type=float, default=60)
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--server-threads", type=int, help="the server runtime's CPU threads (default: all cores)")
    ap.add_argument("--max-batch-size", type=int)
    ap.add_argument("--max-requests", type=int, default=200_000, help="bound on requests in all")
    ap.add_argument("--stop-timeout", type=float, default=20, help="seconds the server may take to exit")
    ap.add_argument("--json", help="write the report here too")
    args = ap.parse_args()

    python = pytriton_env.ensure()
    server = ServerProcess(python, args.model, backend=args.backend, threads=args.server_threads,
                           max_batch_size=args.max_batch_size, stop_timeout=args.stop_timeout)  # fmt: skip
    server.start()
    samples: list[tuple[float, int]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(1.0):
            pids = server.tree()
            if not pids:
                break
            samples.append((time.monotonic(), rss(pids)))

    start_rss = rss(server.tree())
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load, gone = Load(args.max_requests), threading.Event()
    maps = [landscapes.layout(seed, 256, 256).astype(np.int32) for seed in range(args.clients)]
    began = time.monotonic()
    until = began + args.seconds + args.stop_timeout + 5  # the hard bound; SIGTERM comes at `seconds`
    threads = [threading.Thread(target=client_loop, args=(server.grpc_url, server.model, m, load, until, gone))
               for m in maps]  # fmt: skip
    for t in threads:
        t.start()
    time.sleep(max(0.0, began + args.seconds - time.monotonic()))
    loaded = time.monotonic() - began
    with load.lock:
        served = len(load.latencies)
        load.sigterm_at = time.monotonic()
    end_rss = samples[-1][1] if samples else rss(server.tree())
    max_rss = max([s for _, s in samples] + [start_rss, end_rss])
    try:
        code = server.stop()
        stopped = server.stop_seconds
    except ServerUnavailable as e:
        code, stopped = None, None
        print(f"the server did not exit within {args.stop_timeout} s of SIGTERM (killed): {e}", file=sys.stderr)
    finally:
        server.kill()
    if code == 0:
        server.log.unlink(missing_ok=True)
    else:
        print(f"the server's log: {server.log}", file=sys.stderr)
    gone.set()
    sampling.set()
    for t in threads:
        t.join(60)

    lat = np.array(load.latencies) * 1e3
    report = {
        "model": server.model, "backend": args.backend, "clients": args.clients, "seconds": round(loaded, 1),
        "server_threads": args.server_threads, "requests": served, "throughput_per_s": round(served / loaded, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
        "errors": len(load.errors), "first_errors": load.errors[:3],
        "server_rss_mb": {"start": round(start_rss / 2**20), "end": round(end_rss / 2**20),
                          "max": round(max_rss / 2**20), "samples": len(samples),
                          "every_5_s": [round(r / 2**20) for _, r in samples[::5]]},
        "shutdown": {"exit_code": code, "seconds": None if stopped is None else round(stopped, 2),
                     "after_sigterm": load.after, "after_sigterm_other": load.after_other},
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if not load.errors and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
