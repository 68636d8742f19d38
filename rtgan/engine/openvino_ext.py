"""rtgan's OpenVINO CPU extension (`rtgan/kernels/asap_mlp_openvino.cpp`): built on first use, cached, loaded.

    path = extension_path()          # compiles once per source x OpenVINO version x compiler
    core.add_extension(str(path))    # then ONNX nodes rtgan::AsapPixelMlp[Extra], LabelConv3x3 read as CPU ops

OpenVINO's wheel ships its headers and libraries, so the only extra need is a C++17 compiler
(`$CXX`, else c++ / g++ / clang++). Without one, or off Linux x86-64, `ExtensionUnavailable` says
why and engines use the standard-op graph. NumPy-free and torch-free: the engine imports it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

from ..errors import RtganError
from ..utils import cpu
from .contract import CACHE_ROOT

SOURCE = Path(__file__).parents[1] / "kernels" / "asap_mlp_openvino.cpp"  # beside its reference and tests
OPS = ("AsapPixelMlp", "AsapPixelMlpExtra", "LabelConv3x3")  # the ONNX op types (domain rtgan) it implements
LIBRARY = "librtgan_openvino.so"


class ExtensionUnavailable(RtganError):
    """The OpenVINO extension cannot be built or loaded here (the reason is the message)."""


def _openvino_root() -> Path:
    try:
        import openvino
    except ImportError:
        raise ExtensionUnavailable("openvino is not installed: pip install 'rtgan[cpu]'") from None
    return Path(openvino.__file__).parent


def _compiler() -> str:
    for name in [os.environ.get("CXX"), "c++", "g++", "clang++"]:
        if name and shutil.which(name):
            return shutil.which(name)
    raise ExtensionUnavailable("no C++ compiler found (set CXX, or install g++)")


def _definitions(root: Path) -> list[str]:
    """The compile definitions OpenVINO's CMake package gives its users (C++ ABI, threading)."""
    text = (root / "cmake" / "OpenVINOTargets.cmake").read_text() if (root / "cmake").is_dir() else ""
    found = re.findall(r'INTERFACE_COMPILE_DEFINITIONS "([^"]*OV_THREAD[^"]*)"', text)
    defs = found[-1].split(";") if found else ["OV_THREAD=OV_THREAD_TBB"]
    return [f"-D{d}" for d in defs if d]


def _library(libs: Path, stem: str) -> str:
    """`-l:` for a versioned library of the wheel (it ships libopenvino.so.NNNN, no unversioned link)."""
    found = sorted(libs.glob(f"{stem}.so*"), key=lambda p: len(p.name))
    if not found:
        raise ExtensionUnavailable(f"{libs} has no {stem}.so: this OpenVINO install has no C++ libraries")
    return f"-l:{found[0].name}"


def extension_path(log=None) -> Path:
    """The built library for the installed OpenVINO and this CPU (compiled on first call, ~10 s,
    then cached)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        here = f"{platform.system()} {platform.machine()}"
        raise ExtensionUnavailable(f"the extension is built for Linux x86-64, not {here}")
    root = _openvino_root()
    cxx = _compiler()
    import openvino

    # -march=native: built for the CPU at hand, so the cache key holds that CPU's features (a cache
    # shared between machines never hands an AVX-512 build to an AVX2 CPU)
    host = " ".join(sorted(cpu._proc_flags()))  # the real flags: -march=native ignores RTGAN_CPU_FLAGS
    # RTGAN_MARCH builds for another x86-64 level (x86-64-v3: AVX2, x86-64: SSE2), as on older CPUs
    march = os.environ.get("RTGAN_MARCH", "native")
    if not re.fullmatch(r"[\w.-]+", march):
        raise ExtensionUnavailable(f"RTGAN_MARCH={march!r} is not a -march value")
    key = f"{openvino.__version__} {cxx} {root} {host} {march}"
    key = hashlib.sha256(SOURCE.read_bytes() + key.encode()).hexdigest()[:16]
    out = CACHE_ROOT / "kernels" / f"openvino-{key}" / LIBRARY
    if out.is_file():
        return out
    libs = root / "libs"
    command = [
        cxx, "-std=c++17", "-O3", f"-march={march}", "-fno-math-errno", "-shared", "-fPIC", *_definitions(root),
        "-Wno-psabi", "-Wno-ignored-attributes",  # vector-extension types in inline helpers: nothing crosses the ABI
        "-I", str(root / "include"), str(SOURCE), "-L", str(libs),
        _library(libs, "libopenvino"), _library(libs, "libopenvino_onnx_frontend"), _library(libs, "libtbb"),
        f"-Wl,-rpath,{libs}",
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{LIBRARY}.{os.getpid()}.tmp")
    if log:
        log(f"building rtgan's OpenVINO extension (once per OpenVINO version) with {Path(cxx).name}")
    started = time.perf_counter()
    done = subprocess.run([*command, "-o", str(tmp)], capture_output=True, text=True)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ExtensionUnavailable(f"building {SOURCE.name} failed:\n{done.stderr[-2000:]}")
    os.replace(tmp, out)  # atomic: a concurrent build writes its own tmp and replaces the same file
    if log:
        log(f"built {out} in {time.perf_counter() - started:.0f} s")
    return out


def add_to(core, log=None) -> Path:
    """Register the extension with an `openvino.Core`; returns the library's path."""
    path = extension_path(log)
    try:
        core.add_extension(str(path))
    except RuntimeError as e:  # a library built for another OpenVINO, a broken file
        raise ExtensionUnavailable(f"OpenVINO could not load {path}: {e}") from None
    return path
