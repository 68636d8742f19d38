"""What a `--model` argument names: a bundled model, an rtgan model directory, an exported engine
directory or an official checkpoint, and the facts about it that need no PyTorch (size, classes).

Every command that takes a model resolves it here, so the same spellings work everywhere, and a
wrong one is reported before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from . import weights
from .engine.contract import MANIFEST
from .errors import ConfigError

MODEL_CONFIG = "config.json"  # rtgan.models.io's file (duplicated here so this module stays torch-free)
# rosinality StyleGAN saves `.model`; NVlabs `.pkl` files are recognised so that the loader can say why it refuses them
OFFICIAL_SUFFIXES = (".pth", ".pt", ".ckpt", ".model", ".pkl")


@dataclasses.dataclass(frozen=True)
class ModelRef:
    kind: str  # "model" (rtgan format: bundled or saved) | "engine" (exported artifact) | "official" (.pth)
    path: Path
    name: str  # what the user wrote, or the bundled name

    @property
    def bundled(self) -> bool:
        return self.kind == "model" and self.path.parent == weights.ROOT

    def meta(self) -> dict:
        """config.json of a model directory, or manifest.json of an engine (unverified)."""
        file = self.path / (MANIFEST if self.kind == "engine" else MODEL_CONFIG)
        try:
            return json.loads(file.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{file}: unreadable ({e})") from None

    def arch(self) -> str | None:
        return None if self.kind == "official" else self.meta().get("arch")

    def natural_size(self) -> tuple[int, int] | None:
        """The size it paints by default: an engine's fixed size, the size a model was trained at, or
        its config's crop size; None when nothing says (an official checkpoint, an untrained pix2pixHD)."""
        if self.kind == "official":
            return None
        meta = self.meta()
        if self.kind == "engine":
            return meta["height"], meta["width"]
        trained = (meta.get("trained") or {}).get("size")
        if trained:
            return int(trained[0]), int(trained[1])
        c = meta.get("config", {})
        if "crop_size" in c:
            return round(c["crop_size"] / c.get("aspect_ratio", 1.0)), int(c["crop_size"])
        return None


def resolve(model: str) -> ModelRef:
    """A bundled model's name or a path -> what it is, with an error naming the choices when it is none."""
    if model in weights.BUNDLED:
        path = weights.path(model)
        if not (path / MODEL_CONFIG).is_file():
            raise ConfigError(f"bundled model {model!r} is not in this install ({path} has no {MODEL_CONFIG})")
        return ModelRef("model", path, model)
    path = Path(model)
    if path.is_file() and path.suffix in OFFICIAL_SUFFIXES:
        return ModelRef("official", path, model)
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return ModelRef("engine", path, model)
        if (path / MODEL_CONFIG).is_file():
            return ModelRef("model", path, model)
        raise ConfigError(
            f"{path}: neither an exported engine ({MANIFEST}) nor an rtgan model ({MODEL_CONFIG}); "
            f"a model is one of: {', '.join(weights.BUNDLED)}, a directory from rtgan.models.save or "
            "rtgan.export, or an official .pth with --preset"
        )
    import difflib

    hint = difflib.get_close_matches(model, weights.BUNDLED, 1)
    raise ConfigError(
        f"no model {model!r}"
        + (f" (did you mean {hint[0]!r}?)" if hint else "")
        + f": give a bundled model ({', '.join(weights.BUNDLED)}), a model or engine directory, "
        "or an official .pth with --preset"
    )
