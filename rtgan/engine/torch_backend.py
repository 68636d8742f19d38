"""The `torch` backend: the saved generator run eagerly, or as the fused-kernel graph on CUDA.

The only engine module that imports PyTorch and rtgan's model and export code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backends import _require
from .tensorrt import BackendUnavailable


class TorchBackend:
    """The reference: the saved generator run eagerly (prepare + forward + uint8 conversion).

    On CUDA with Triton installed, SPADE and ASAPNet run instead as the `kernels` inference graph,
    whose fused norm-denorm and pixelwise MLP are rtgan's Triton kernels (`kernels=False` opts out;
    `kernels=True` elsewhere runs the same graph on the ops' PyTorch references).
    """

    name = "torch"

    def __init__(
        self,
        directory: Path,
        manifest: dict,
        device: str | None = None,
        threads: int | None = None,
        kernels: bool | None = None,
    ):
        torch = _require("torch", "torch")
        from ..models import load

        if not (directory / "model").is_dir():
            raise BackendUnavailable(f"{directory} holds no PyTorch model (export with backend='torch')")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = load(directory / "model", device=self.device)
        auto = kernels is None
        if auto:
            import importlib.util

            kernels = self.device.startswith("cuda") and importlib.util.find_spec("triton") is not None
        self.kernels = kernels and self.model.config.arch in ("spade", "asapnet")
        self.graph = None
        if self.kernels:
            from ..errors import ConfigError
            from ..export.graph import inference_graph
            from ..export.rewrite import Rewrites

            size = manifest["height"], manifest["width"]
            try:
                self.graph = inference_graph(self.model, *size, Rewrites(kernels=True)).to(self.device)
            except ConfigError:  # a configuration the fused kernels do not cover
                if not auto:
                    raise
                self.kernels = False

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self.graph is None:
            from ..export import reference_image

            return reference_image(self.model, feeds)
        import torch

        with torch.inference_mode():
            args = [torch.from_numpy(feeds[n]).to(self.device) for n in self.graph.input_names()]
            return self.graph(*args).cpu().numpy()
