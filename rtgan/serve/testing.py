"""`python -m rtgan.serve run` as a child process on free loopback ports, for tests and benchmarks.

    with ServerProcess(python, "landscape-asapnet", backend="onnxruntime") as server:
        Client(server.grpc_url, model=server.model).paint(labels)
    # on exit: SIGTERM, then the process (and tritonserver, its child) must be gone within `stop_timeout`

It also reads the process tree (the server and its tritonserver child and Python backend stubs) from
/proc: `tree()` lists the pids, `rss()` sums their resident memory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import ServerUnavailable
from .pytriton_env import server_env


def free_ports(n: int) -> list[int]:
    """`n` distinct ports the kernel has just handed out on 127.0.0.1 (free at that moment)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # the field after the parenthesised command name is the state, then the parent pid
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def rss(pids: list[int]) -> int:
    """Resident bytes of `pids` summed (processes that exited count 0)."""
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class ServerProcess:
    def __init__(self, python: str | Path, artifact: str | Path, *, args: tuple[str, ...] = (),
                 start_timeout: float = 180, stop_timeout: float = 20, **options):  # fmt: skip
        self.python, self.artifact = python, artifact
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items() if v is not None]
        self.cmd = [str(python), "-m", "rtgan.serve", "run", str(artifact), "--host", "127.0.0.1",
                    "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
                    "--metrics-port", str(self.metrics_port), *flags, *args]  # fmt: skip
        self.model = options.get("name")
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="rtgan-serve-", suffix=".log")[1])
        self.stop_seconds: float | None = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def start(self) -> "ServerProcess":
        from .client import Client

        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=server_env(),
                                         start_new_session=True)  # fmt: skip
        if self.model is None:
            from ..engine.manifest import read_manifest
            from .pytriton_server import resolve_artifact
            from .repository import default_name

            directory = resolve_artifact(str(self.artifact))
            self.model = default_name(directory, read_manifest(directory, verify_files=False))
        client = Client(self.grpc_url, self.model)
        deadline = time.monotonic() + self.start_timeout
        while not client.ready():
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerUnavailable(f"the server was not ready after {self.start_timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.25)
        client.close()
        return self

    def tree(self) -> list[int]:
        return tree(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def stop(self) -> int:
        """SIGTERM and wait: the exit code (ServerUnavailable if it outlives `stop_timeout`, after a SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerUnavailable(
                f"the server outlived SIGTERM by {self.stop_timeout:.0f} s:\n{self.tail()}"
            ) from None
        self.stop_seconds = time.perf_counter() - started
        return code

    def kill(self) -> None:
        """SIGKILL the server's process group (its own session: only the processes it started)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            self.kill()
            if exc[0] is None:
                self.log.unlink(missing_ok=True)
            else:
                print(f"server log kept at {self.log}", file=sys.stderr)
