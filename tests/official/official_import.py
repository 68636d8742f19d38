"""Import generator code from local checkouts of the official repositories, for differential tests.

The repositories are never vendored: point RTGAN_OFFICIAL_DIR at a folder holding checkouts named
SPADE (NVlabs/SPADE), ASAPNet (tamarott/ASAPNet), pix2pixHD (NVIDIA/pix2pixHD) and
pytorch-CycleGAN-and-pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix, `models/networks.py` only). All
use a top-level package called `models`, so each import runs with a clean module table and stubs for
what generator code does not need: the missing `sync_batchnorm` submodule (a plain BatchNorm2d has
its state-dict layout), torchvision (used only by the VGG loss), and the training utilities.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
from torch import nn

ROOT = os.environ.get("RTGAN_OFFICIAL_DIR")
_SHADOWED = ("models", "util", "data", "options", "trainers")


def repo(name: str) -> Path:
    if not ROOT or not (Path(ROOT) / name / "models").is_dir():
        pytest.skip(f"official {name} checkout not found: set RTGAN_OFFICIAL_DIR to a folder with {name}/")
    return Path(ROOT) / name


def _stub(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


@contextlib.contextmanager
def _isolated(path: Path):
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in _SHADOWED + ("torchvision", "scipy")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))
        for k in [k for k in sys.modules if k.split(".")[0] in _SHADOWED + ("torchvision", "scipy")]:
            del sys.modules[k]
        sys.modules.update(saved)


def load(repo_name: str, module: str) -> types.ModuleType:
    """Import `module` (e.g. 'models.networks.generator') from the checkout, with stubs in place."""
    path = repo(repo_name)
    with _isolated(path):
        stubs = {
            "torchvision": _stub("torchvision", models=_stub("torchvision.models")),
            "torchvision.models": _stub("torchvision.models"),
            "util": _stub("util", __path__=[]),
            "util.util": _stub("util.util"),
            "scipy": _stub("scipy", __path__=[]),
            "scipy.ndimage": _stub("scipy.ndimage", __path__=[]),
            "scipy.ndimage.morphology": _stub("scipy.ndimage.morphology", distance_transform_edt=None),
            "models": _stub("models", __path__=[str(path / "models")]),
        }
        if (path / "models" / "networks").is_dir():
            stubs["models.networks"] = _stub("models.networks", __path__=[str(path / "models" / "networks")])
            stubs["models.networks.sync_batchnorm"] = _stub(
                "models.networks.sync_batchnorm", SynchronizedBatchNorm2d=nn.BatchNorm2d
            )
        sys.modules.update(stubs)
        return importlib.import_module(module)


def load_file(relpath: str) -> types.ModuleType:
    """Import one file of a checkout that needs only torch (MUNIT/networks.py, style-based-gan-pytorch/model.py)
    by its path, under a private module name, so that no top-level name can collide."""
    path = Path(ROOT or "") / relpath
    if not ROOT or not path.is_file():
        pytest.skip(f"official code not found: set RTGAN_OFFICIAL_DIR to a folder with {relpath}")
    spec = importlib.util.spec_from_file_location("official_" + relpath.replace("/", "_").removesuffix(".py"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
