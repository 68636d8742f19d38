"""manifest.json of an artifact directory: what it holds, how it was built, and checks on load."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import RtganError
from .contract import MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION


class ArtifactError(RtganError):
    """An artifact directory is incomplete, corrupted, or was built for other libraries or hardware."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(directory: str | os.PathLike, *, verify_files: bool = True) -> dict[str, Any]:
    """Read and check `manifest.json`: format, version, and the content hash of every listed file."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory}: no {MANIFEST}; not an rtgan artifact (or an interrupted export)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: corrupted JSON: {e}") from None
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("format_version") != MANIFEST_VERSION:
        raise ArtifactError(
            f"{path}: format {manifest.get('format')!r} v{manifest.get('format_version')} is not "
            f"{MANIFEST_FORMAT!r} v{MANIFEST_VERSION}; re-export with this rtgan"
        )
    if verify_files:
        for name, digest in manifest.get("files", {}).items():
            f = directory / name
            if not f.is_file():
                raise ArtifactError(f"{directory}: {name} listed in the manifest is missing")
            if sha256_file(f) != digest:
                raise ArtifactError(f"{f}: SHA-256 does not match the manifest (corrupted or modified)")
    return manifest


def installed_version(module: str) -> str | None:
    from importlib import metadata

    names = {"tensorrt-rtx": ["tensorrt-rtx", "tensorrt_rtx"], "tensorrt": ["tensorrt"]}.get(module, [module])
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None
