"""The kernels as TensorRT plugins: names, fields, shape and type rules, launch geometry, and the PTX
that an engine embeds. Pure Python and Triton; `trt_plugins.register()` binds it to `tensorrt.plugin`.

An exported graph calls a plugin with an ONNX node of domain `rtgan` and op_type `spec.name`; its
attributes are the plugin's fields. TensorRT's parser maps such a node to the creator registered as
`rtgan::<name>` (version "1"). The ahead-of-time implementation returns one kernel launched with
(input pointers, int32 scalars, output pointers) and nothing else, so:
- the kernels declare their parameters in that order, float constants are compile-time constants;
- Triton appends hidden scratch pointers after the outputs, which TensorRT would not pass: they
  are removed from the PTX when unused (their sizes are 0), and compilation fails loudly otherwise;
- the PTX is emitted for an ISA version that the deployed driver can JIT (`PTX_VERSION`).

The rules take dims as ints or as TensorRT's symbolic expressions: they check only what is concrete.
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import ConfigError
from . import asap_mlp as _asap
from . import spade_norm as _norm

NAMESPACE = "rtgan"
VERSION = "1"
# PTX ISA 8.4 (CUDA 12.4): drivers from R550 JIT it; Triton's default follows its own, newer toolkit
PTX_VERSION = 84
FLOATS = ("float32", "float16")


class PluginShapeError(ConfigError):
    """A plugin node's inputs do not have the shapes or types the plugin takes."""


@dataclasses.dataclass(frozen=True, eq=False)
class PluginSpec:
    name: str  # ONNX op_type and TensorRT plugin name
    inputs: tuple[str, ...]
    fields: dict[str, str]  # ONNX attributes = TensorRT plugin fields: name -> "float32" | "int32" | "int32[]"

    @property
    def id(self) -> str:
        return f"{NAMESPACE}::{self.name}"


# y = leaky_relu((x - mean) * rsqrt(var + eps) * (1 + gamma) + beta, slope); slope 1 is no activation.
# mean/var: (C,) running statistics, or (N, C) computed by the graph (instance norm).
SPADE_NORM_DENORM = PluginSpec(
    "SpadeNormDenorm", ("x", "gamma", "beta", "mean", "var"), {"eps": "float32", "slope": "float32"}
)
# labels int32 (B, H, W) class indices, params channels-last (B, H/tile, W/tile, P) -> uint8 (B, H, W, 3)
ASAP_PIXEL_MLP = PluginSpec(
    "AsapPixelMlp", ("labels", "params"), {"num_classes": "int32", "channels": "int32[]", "tile": "int32"}
)
# extra (B, E, H, W), params' dtype: the MLP input's float channels after the one-hot map (instance
# edges, then noise); E follows from `channels`
ASAP_PIXEL_MLP_EXTRA = PluginSpec("AsapPixelMlpExtra", ("labels", "params", "extra"), ASAP_PIXEL_MLP.fields)
SPECS = {s.name: s for s in (SPADE_NORM_DENORM, ASAP_PIXEL_MLP, ASAP_PIXEL_MLP_EXTRA)}


@dataclasses.dataclass(frozen=True)
class Desc:
    """A tensor as a plugin sees it at build time: dims (ints or symbolic) and a dtype name."""

    shape: tuple
    dtype: str


def _concrete(*dims) -> bool:
    return all(isinstance(d, int) for d in dims)


def _expect(cond: bool, spec: PluginSpec, message: str) -> None:
    if not cond:
        raise PluginShapeError(f"{spec.id}: {message}")


def spade_norm_denorm_output(x: Desc, gamma: Desc, beta: Desc, mean: Desc, var: Desc) -> Desc:
    """Output descriptor (x's shape and dtype), after checking the inputs against each other."""
    s = SPADE_NORM_DENORM
    _expect(len(x.shape) == 4, s, f"x must be (N, C, H, W), got rank {len(x.shape)}")
    _expect(x.dtype in FLOATS, s, f"x must be float32 or float16, got {x.dtype}")
    for name, t in (("gamma", gamma), ("beta", beta)):
        _expect(t.dtype == x.dtype, s, f"{name} is {t.dtype}, x is {x.dtype}")
        _expect(len(t.shape) in (2, 4), s, f"{name} must be (N, C, H, W) or (N, C), got rank {len(t.shape)}")
    _expect(len(gamma.shape) == len(beta.shape), s, "gamma and beta must have the same rank")
    for name, t in (("mean", mean), ("var", var)):
        _expect(t.dtype == "float32", s, f"{name} must be float32, got {t.dtype}")
        _expect(len(t.shape) in (1, 2), s, f"{name} must be (C,) or (N, C), got rank {len(t.shape)}")
    _expect(len(mean.shape) == len(var.shape), s, "mean and var must have the same rank")
    for name, t in (("gamma", gamma), ("beta", beta)):
        for have, want in zip(t.shape, x.shape):
            if _concrete(have, want):
                _expect(have == want, s, f"{name} shape {t.shape} does not match x {x.shape}")
    c = x.shape[1]
    if _concrete(mean.shape[-1], c):
        _expect(mean.shape[-1] == c, s, f"mean has {mean.shape[-1]} channels, x has {c}")
    return Desc(x.shape, x.dtype)


def asap_param_count(channels: list[int]) -> int:
    return sum(cout + cin * cout for cin, cout in zip(channels, channels[1:]))


def asap_extra_channels(num_classes: int, channels: list[int], tile: int) -> int:
    """E, the float channels between one-hot and code, that the MLP's input width implies."""
    return channels[0] - num_classes - 4 * (tile.bit_length() - 1)


def asap_pixel_mlp_output(
    labels: Desc, params: Desc, extra: Desc | None, num_classes: int, channels: list[int], tile: int
) -> Desc:
    s = ASAP_PIXEL_MLP_EXTRA if extra is not None else ASAP_PIXEL_MLP
    _expect(labels.dtype == "int32" and len(labels.shape) == 3, s, f"labels must be int32 (B, H, W), got {labels}")
    _expect(params.dtype in FLOATS and len(params.shape) == 4, s, f"params must be float (B, HL, WL, P), got {params}")
    nfreq = tile.bit_length() - 1
    _expect(tile >= 2 and 1 << nfreq == tile, s, f"tile must be a power of two, got {tile}")
    n_extra = asap_extra_channels(num_classes, channels, tile)
    _expect(
        (n_extra > 0) == (extra is not None) and n_extra >= 0 and channels[-1] == 3,
        s,
        f"channels {channels} do not fit {num_classes} classes, "
        f"{'an extra input' if extra is not None else 'no extra input'}, tile {tile}",
    )
    _expect(len(set(channels[1:-1])) == 1, s, f"hidden layers must have one width, got {channels}")
    b, h, w = labels.shape
    pb, hl, wl, p = params.shape
    need = asap_param_count(channels)
    if _concrete(p):
        _expect(p == need, s, f"params has {p} channels, the MLP needs {need}")
    for have, want in ((h, hl), (w, wl)):
        if _concrete(have, want):
            _expect(have == want * tile, s, f"labels {labels.shape} is not params {params.shape} times tile {tile}")
    if _concrete(b, pb):
        _expect(b == pb, s, f"batch {b} of labels differs from params' {pb}")
    if extra is not None:
        _expect(extra.dtype == params.dtype, s, f"extra must be {params.dtype}, got {extra.dtype}")
        _expect(len(extra.shape) == 4, s, f"extra must be (B, E, H, W), got rank {len(extra.shape)}")
        if _concrete(extra.shape[1]):
            _expect(extra.shape[1] == n_extra, s, f"extra has {extra.shape[1]} channels, channels imply {n_extra}")
        for have, want in zip((extra.shape[0], *extra.shape[2:]), labels.shape):
            if _concrete(have, want):
                _expect(have == want, s, f"extra {extra.shape} does not match labels {labels.shape}")
    return Desc((b, h, w, 3), "uint8")


@dataclasses.dataclass(frozen=True)
class PluginKernel:
    """What TensorRT's AOT implementation returns, less the symbolic launch dims."""

    name: str
    ptx: str
    num_warps: int
    shared_bytes: int
    params: int  # pointer and scalar parameters of the entry, after removing scratch pointers


def strip_scratch_params(ptx: str, name: str, keep: int) -> str:
    """Drop the entry's parameters after the first `keep`, which must be unused (Triton's scratch)."""
    entry = re.search(rf"\.entry {re.escape(name)}\((.*?)\)", ptx, re.S)
    if entry is None:
        raise ValueError(f"no .entry {name} in the PTX")
    params = [p.strip() for p in entry.group(1).split(",")]
    extra = [p.split()[-1] for p in params[keep:]]
    used = [p for p in extra if re.search(rf"\[{re.escape(p)}\]", ptx)]
    if used:
        raise ValueError(f"{name}: hidden parameters {used} are used (scratch memory); TensorRT cannot pass them")
    body = ",\n".join("\t" + p for p in params[:keep])
    return ptx[: entry.start(1)] + "\n" + body + "\n" + ptx[entry.end(1) :]


def _dtype(name: str) -> str:
    return {"float32": "fp32", "float16": "fp16"}[name]


def spade_kernel(
    dtype: str, eps: float, slope: float, arch: int, ptx_version: int | None = PTX_VERSION
) -> PluginKernel:
    """The SpadeNormDenorm kernel for TensorRT: statistics given (running or per-sample)."""
    from .aot import compile_kernel

    sig, consts = _norm.kernel_signature(_dtype(dtype), instance=False, eps=eps, slope=None if slope == 1 else slope)
    return _plugin_kernel(compile_kernel(_norm._norm_denorm, sig, consts, 4, arch, ptx_version), sig)


def asap_kernel(
    dtype: str, num_classes: int, channels: list[int], tile: int, arch: int,
    ptx_version: int | None = PTX_VERSION,
) -> PluginKernel:  # fmt: skip
    """The AsapPixelMlp(Extra) kernel for TensorRT: uint8 output; `channels` say how many extra channels."""
    from .aot import compile_kernel

    n_extra = asap_extra_channels(num_classes, channels, tile)
    sig, consts, warps = _asap.kernel_signature(_dtype(dtype), num_classes, channels, tile, n_extra, uint8=True)
    return _plugin_kernel(compile_kernel(_asap._asap_mlp, sig, consts, warps, arch, ptx_version), sig)


def _plugin_kernel(kernel, signature: dict) -> PluginKernel:
    md = kernel.metadata
    if md.global_scratch_size or md.profile_scratch_size:
        raise ValueError(f"{md.name} needs scratch memory, which a TensorRT AOT plugin cannot provide")
    keep = sum(1 for t in signature.values() if t != "constexpr")
    return PluginKernel(md.name, strip_scratch_params(kernel.asm["ptx"], md.name, keep), md.num_warps, md.shared, keep)


def spade_launch(x: Desc, gamma: Desc, mean: Desc, cdiv) -> tuple[tuple, tuple]:
    """Grid and int32 scalars of the SpadeNormDenorm kernel (the op's own geometry)."""
    return _norm.launch_geometry(x.shape, len(gamma.shape) == 2, len(mean.shape) == 2, cdiv)


def asap_launch(labels: Desc, params: Desc, tile: int, cdiv) -> tuple[tuple, tuple]:
    return _asap.launch_geometry(labels.shape, params.shape, tile, cdiv)
