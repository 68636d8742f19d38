"""Triton, when installed (`rtgan[kernels]`): kernels are defined only then; references never need it."""

import os

# FMA contraction on, as Triton has always defaulted to (3.9 warns that the default will change)
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

try:
    import triton
    import triton.language as tl
except ImportError:  # the PyTorch references and the CPU paths work without it
    triton = tl = None

__all__ = ["tl", "triton"]
