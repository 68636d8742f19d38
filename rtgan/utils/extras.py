"""What a step needs that may not be installed (a pip extra, an NVIDIA GPU, a display), checked
before the work starts so the user learns the fix in one line instead of a traceback at the end."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil

from ..errors import RtganError


class MissingDependency(RtganError):
    """A library, a GPU or a display that this step needs is not here; the message names the fix."""


def has_module(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken install
        return False


def require(module: str, extra: str, purpose: str, package: str | None = None) -> None:
    """Raise MissingDependency unless `module` can be imported; `extra` is the rtgan extra that installs it."""
    if not has_module(module):
        raise MissingDependency(
            f"{purpose} needs {package or module}, which is not installed: pip install 'rtgan[{extra}]'"
        )


def nvidia_gpu_present() -> bool:
    """Whether this machine shows an NVIDIA GPU (driver device nodes, or nvidia-smi), without importing CUDA."""
    if os.environ.get("RTGAN_ASSUME_GPU") == "1":  # containers that hide /dev/nvidia* but pass CUDA through
        return True
    return bool(glob.glob("/dev/nvidia[0-9]*")) or (os.name == "nt" and shutil.which("nvidia-smi") is not None)


def require_gpu(purpose: str, alternative: str) -> None:
    if not nvidia_gpu_present():
        raise MissingDependency(
            f"{purpose} needs an NVIDIA GPU with its driver, and none is visible here; {alternative}"
        )
