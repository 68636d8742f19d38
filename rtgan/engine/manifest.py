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


def check_export_target(out: str | os.PathLike) -> Path:
    """Refuse an export directory whose replacement would delete something rtgan did not write.

    An artifact is written beside `out` and renamed over it, so `out` may be new, empty, or an
    earlier artifact holding only the files its manifest lists; anything else is the user's.
    """
    path = Path(out).expanduser().absolute()
    cwd = Path.cwd().absolute()
    if path == cwd or path in cwd.parents:
        raise ArtifactError(
            f"--out {out} is the current folder (or holds it); an export replaces its --out folder, "
            f"so name a new one, e.g. --out {Path(out) / 'engine'}"
        )
    if path.exists() and not path.is_dir():
        raise ArtifactError(f"--out {out} is a file; name a folder for the artifact")
    if not path.is_dir() or not any(path.iterdir()):
        return path
    ours = {MANIFEST}
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("format") == MANIFEST_FORMAT:
            files = set(manifest.get("files", {}))
            ours |= files | {parent.as_posix() for f in files for parent in Path(f).parents if parent != Path(".")}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        manifest = None
    found = {p.relative_to(path).as_posix() for p in path.rglob("*")}
    foreign = sorted(found - ours) if manifest is not None else sorted(found)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ArtifactError(
            f"--out {out} holds files that are not part of an rtgan artifact ({shown}); an export "
            f"replaces its --out folder, so give a new or empty one, e.g. --out {Path(out) / 'engine'}"
        )
    return path
