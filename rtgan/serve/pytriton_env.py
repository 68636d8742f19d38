"""The PyTriton environment that tests and benchmarks run `python -m rtgan.serve run` in, made once and cached.

PyTriton 0.7 needs numpy < 2 while rtgan's development environment has numpy 2, so the server runs
in a virtual environment of its own. This one holds only what the server imports (nvidia-pytriton,
numpy < 2, and ONNX Runtime at the version of the calling environment, so both sides run the same
kernels and paint the same pixels); rtgan itself comes from the checkout via PYTHONPATH, never
installed, so the cached environment stays valid as the code changes. It lives under
~/.cache/rtgan/serve-env/<hash of the requirements and the Python version> (RTGAN_CACHE moves it).
Users set up theirs with the one command in docs/serving.md instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..engine.contract import CACHE_ROOT
from ..engine.manifest import installed_version
from ..errors import RtganError

ROOT = Path(__file__).resolve().parents[2]  # the checkout: PYTHONPATH for the server


class EnvironmentUnavailable(RtganError):
    """The PyTriton environment could not be made here (no network for pip, no venv module, ...)."""


def requirements(extra: tuple[str, ...] = ()) -> list[str]:
    pins = ["nvidia-pytriton>=0.7,<0.8", "numpy<2"]
    ort = installed_version("onnxruntime")
    pins.append(f"onnxruntime=={ort}" if ort else "onnxruntime")
    return pins + list(extra)


def env_dir(reqs: list[str]) -> Path:
    key = hashlib.sha256(repr((sorted(reqs), sys.version_info[:2], sys.platform)).encode()).hexdigest()[:12]
    return CACHE_ROOT / "serve-env" / key


def python(env: Path) -> Path:
    return env / "bin" / "python"


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables the server process runs with: the checkout on PYTHONPATH."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env.pop("VIRTUAL_ENV", None)
    return env


def ensure(reqs: list[str] | None = None, *, progress=None, timeout: float = 900) -> Path:
    """The cached environment's python, making the environment first if needed (with progress on stderr)."""
    reqs = reqs or requirements()
    say = progress or (lambda m: print(f"rtgan.serve: {m}", file=sys.stderr, flush=True))
    env = env_dir(reqs)
    if (env / "rtgan-ready").is_file():
        return python(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second test process waits for the first one's environment
        if (env / "rtgan-ready").is_file():
            return python(env)
        tmp = Path(tempfile.mkdtemp(prefix=f".{env.name}.", dir=env.parent))
        try:
            started = time.perf_counter()
            say(f"making the PyTriton environment {env} (once): {' '.join(reqs)}")
            _run([sys.executable, "-m", "venv", str(tmp)], "python -m venv", timeout)
            pip = [str(python(tmp)), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
            _run(pip + reqs, "pip install", timeout, say)
            (tmp / "rtgan-ready").write_text(" ".join(reqs) + "\n")
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(env)  # a half-made one from a killed run
            os.replace(tmp, env)  # a venv's own python finds its packages by its location: renaming is safe
            size = sum(f.stat().st_size for f in env.rglob("*") if f.is_file() and not f.is_symlink())
            say(f"PyTriton environment ready in {time.perf_counter() - started:.0f} s ({size / 2**20:.0f} MB)")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return python(env)


def _run(cmd: list[str], what: str, timeout: float, say=None) -> None:
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as e:
        raise EnvironmentUnavailable(f"{what}: {e}") from None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line.rstrip())
        if say and line.startswith(("Collecting", "Installing", "Successfully")):
            say("  " + line.strip()[:160])
        if time.monotonic() > deadline:
            proc.kill()
            break
    if proc.wait() != 0:
        tail = "\n".join(lines[-8:])
        raise EnvironmentUnavailable(f"{what} failed (exit {proc.returncode}; no network for pip?):\n{tail}")
