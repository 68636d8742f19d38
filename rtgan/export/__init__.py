"""`rtgan.export(model, backend=..., height=..., width=...)`: a trained generator -> an engine artifact.

| backend        | artifact      | CPU | GPU | precision  |
|----------------|---------------|-----|-----|------------|
| onnxruntime    | model.onnx    | yes | yes | fp32       |
| openvino       | model.xml     | yes | no  | fp32       |
| torch          | model/        | yes | yes | fp32       |
| tensorrt       | model.plan    | no  | yes | fp32, fp16 |
| tensorrt-rtx   | model.plan    | no  | yes | fp32, fp16 |

Every artifact directory also holds the ONNX graph and `manifest.json`; it is written to a
temporary directory and renamed into place, and an existing artifact built from the same weights
and options (the cache key) is reused. `plugins=True` also writes `model.plugins.onnx`, the graph
with rtgan's fused kernels as TensorRT plugin nodes (`rtgan.export.plugins`); a `tensorrt` plan is
then built from it, with the kernels embedded.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from ..formats import FORMATS  # noqa: F401  (rtgan.export.FORMATS)

__all__ = ["FORMATS", "Rewrites", "export", "model_digest", "model_feeds", "psnr", "reference_image", "sample_feeds"]

# Imported on first use: they need PyTorch, while the formats table and `python -m rtgan.export`'s
# argument checks must not (a misspelled argument is reported before PyTorch loads).
_LAZY = {name: ".exporter" for name in __all__ if name not in ("FORMATS", "Rewrites")} | {"Rewrites": ".rewrite"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    def __call__(self, model, **options: Any):
        return __getattr__("export")(model, **options)


sys.modules[__name__].__class__ = _CallableModule
