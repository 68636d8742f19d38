"""The artifact contract between `rtgan.export` and `rtgan.engine` (NumPy only, no PyTorch).

Every exported graph takes label ids and returns an image, so no float tensor crosses the API:

| name       | dtype   | shape          | present when                          |
|------------|---------|----------------|---------------------------------------|
| `labels`   | int32   | (B, H, W)      | always; ids in [0, num_classes)       |
| `instance` | int32   | (B, H, W)      | the model takes instance edges        |
| `z`        | float32 | (B, z_dim)     | SPADE with the VAE (`use_vae`)        |
| `image`    | uint8   | (B, H, W, 3)   | output, RGB                           |

B is dynamic; H and W are fixed per artifact. An artifact is a directory holding the backend's
own files (listed in the manifest; every backend but OpenVINO, whose IR holds the weights again,
keeps `model.onnx` too) and `manifest.json`. A VAE model exported with its
style encoder also holds `encoder.onnx`: `style` uint8 (B, H, W, 3) RGB of any size -> `mu`
float32 (B, z_dim).
"""

from __future__ import annotations

import os
from pathlib import Path

INPUT_DTYPES = {"labels": "int32", "instance": "int32", "z": "float32"}
OUTPUT = "image"
MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"
STYLE_FILE = "encoder.onnx"
MANIFEST_FORMAT = "rtgan-engine"
MANIFEST_VERSION = 1

# where exported artifacts are cached (RTGAN_CACHE overrides); shared by rtgan.export and the demo
CACHE_ROOT = Path(os.environ.get("RTGAN_CACHE", Path.home() / ".cache" / "rtgan"))
