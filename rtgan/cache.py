"""The engine cache (`RTGAN_CACHE`, default ~/.cache/rtgan): what it holds, and removing it.

Everything in it is rebuilt on demand (an export, the demo's first run), so cleaning it is always
safe; a corrupted entry is also rebuilt by the commands that use it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from .engine.contract import CACHE_ROOT, MANIFEST


@dataclasses.dataclass(frozen=True)
class Entry:
    path: Path
    bytes: int
    manifest: dict | None  # None: unreadable, or left by an interrupted export

    @property
    def describe(self) -> str:
        m = self.manifest
        if m is None:
            return "incomplete or corrupted (rebuilt on use)"
        return f"{m.get('arch')} {m.get('height')}x{m.get('width')} {m.get('backend')} {m.get('precision')}"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def root() -> Path:
    return CACHE_ROOT


def entries(cache: Path | None = None) -> list[Entry]:
    """Every cached artifact, and every leftover of an interrupted export, largest first."""
    root = cache or CACHE_ROOT
    found = []
    # rtgan.export's artifacts, and the engines the demo exported for model directories
    folders = [f for f in (root / "artifacts", root / "demo" / "engines") if f.is_dir()]
    paths = [p for folder in folders for p in folder.iterdir()]
    for path in sorted(paths):
        manifest = None
        if path.is_dir() and not path.name.startswith("."):
            try:
                manifest = json.loads((path / MANIFEST).read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                pass
        found.append(Entry(path, _size(path), manifest))
    return sorted(found, key=lambda e: -e.bytes)


def clean(cache: Path | None = None) -> tuple[int, int]:
    """Remove every cached artifact and the demo's index; returns (entries removed, bytes freed)."""
    cache = cache or CACHE_ROOT
    removed = entries(cache)
    for e in removed:
        shutil.rmtree(e.path, ignore_errors=True) if e.path.is_dir() else e.path.unlink(missing_ok=True)
    index = cache / "demo" / "index.json"
    index.unlink(missing_ok=True)
    return len(removed), sum(e.bytes for e in removed)
