"""Generators trained by this project and shipped inside the package (see each MODEL_CARD.md).

NumPy-free and torch-free: the demo and engines find the files here without importing models.
"""

from __future__ import annotations

from pathlib import Path

from ..utils.names import lookup

ROOT = Path(__file__).parent
# the label-map models, then the image-to-image one (the demo's photo -> painting mode)
BUNDLED = ("landscape-asapnet", "landscape-spade", "landscape-pix2pixhd", "sketch2landscape-pix2pix")
DEFAULT = "landscape-asapnet"  # the real-time demo model


def path(name: str = DEFAULT) -> Path:
    """Directory of bundled model `name` (rtgan format: config.json + model.safetensors)."""
    name = lookup(name, {n: n for n in BUNDLED}, "bundled model")
    return ROOT / name
