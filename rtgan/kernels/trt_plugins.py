"""The kernels registered with TensorRT's `tensorrt.plugin` (10.9+): descriptors and AOT implementations.

    from rtgan.kernels import trt_plugins
    trt_plugins.register()        # before parsing a plugin-node ONNX (rtgan.export does this)

The AOT implementation hands TensorRT the Triton kernel's PTX, so the engine embeds it and needs
neither Python nor this package at run time. The shape/type rules, launch geometry and PTX come
from `plugins`, which the tests check without TensorRT; this module only adapts them to
`tensorrt.plugin`'s decorators. TensorRT is not installable on the machines this was written on:
the adapter is exercised against a stand-in of that API (tests/kernels/test_plugins.py), not a
real build.
"""

# no `from __future__ import annotations`: tensorrt.plugin reads the annotations as objects
from . import plugins as P


def _gpu_arch() -> int:
    from ..engine.tensorrt import device_compute_capability, probe_cuda

    problem = probe_cuda()
    if problem:
        raise RuntimeError(f"building a TensorRT engine with rtgan plugins needs an NVIDIA GPU: {problem}")
    return int(device_compute_capability().removeprefix("SM"))


def register(arch: "int | None" = None, trt=None, trtp=None) -> None:
    """Register every rtgan plugin for compute capability `arch` (x10; default: this GPU's)."""
    import numpy as np
    import numpy.typing as npt

    if trt is None:
        import tensorrt as trt
        import tensorrt.plugin as trtp
    arch = arch if arch is not None else _gpu_arch()
    # the plugins are registered once per tensorrt.plugin module (it keeps the first definition);
    # a later call only retargets the architecture the AOT implementations compile for
    target = getattr(trtp, "_rtgan_target", None)
    if target is not None:
        target["arch"] = arch
        return
    target = trtp._rtgan_target = {"arch": arch}
    names = {trt.float32: "float32", trt.float16: "float16", trt.int32: "int32", trt.uint8: "uint8"}

    def desc(t) -> P.Desc:
        return P.Desc(tuple(t.shape_expr[i] for i in range(t.ndim)), names[t.dtype])

    def launch(kernel: P.PluginKernel, grid, scalars):
        params = trtp.KernelLaunchParams()
        params.grid_x, params.grid_y = grid
        params.block_x = kernel.num_warps * 32
        params.shared_mem = kernel.shared_bytes
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(s) for s in scalars])
        return kernel.name.encode(), kernel.ptx.encode(), params, extra

    # -- SpadeNormDenorm -------------------------------------------------------------------------
    spade = P.SPADE_NORM_DENORM.id

    @trtp.register(spade)
    def spade_desc(
        x: trtp.TensorDesc, gamma: trtp.TensorDesc, beta: trtp.TensorDesc, mean: trtp.TensorDesc,
        var: trtp.TensorDesc, eps: float, slope: float,
    ) -> trtp.TensorDesc:  # fmt: skip
        P.spade_norm_denorm_output(desc(x), desc(gamma), desc(beta), desc(mean), desc(var))
        return x.like()

    @trtp.autotune(spade)
    def spade_formats(x, gamma, beta, mean, var, outputs):
        return [trtp.AutoTuneCombination("FP32|FP16, FP32|FP16, FP32|FP16, FP32, FP32, FP32|FP16", "LINEAR")]

    @trtp.aot_impl(spade)
    def spade_aot(x, gamma, beta, mean, var, eps: float, slope: float, outputs, tactic):
        kernel = P.spade_kernel(names[x.dtype], eps, slope, target["arch"])
        return launch(kernel, *P.spade_launch(desc(x), desc(gamma), desc(mean), trtp.cdiv))

    # -- AsapPixelMlp, AsapPixelMlpExtra ----------------------------------------------------------
    def asap_out(labels, params, extra, num_classes, channels, tile):
        out = P.asap_pixel_mlp_output(
            desc(labels), desc(params), None if extra is None else desc(extra), num_classes, list(channels), tile
        )
        return trtp.from_shape_expr(out.shape, dtype=trt.uint8)

    def asap_aot(labels, params, num_classes, channels, tile):
        kernel = P.asap_kernel(names[params.dtype], num_classes, list(channels), tile, target["arch"])
        return launch(kernel, *P.asap_launch(desc(labels), desc(params), tile, trtp.cdiv))

    plain, with_extra = P.ASAP_PIXEL_MLP.id, P.ASAP_PIXEL_MLP_EXTRA.id

    @trtp.register(plain)
    def asap_desc(
        labels: trtp.TensorDesc, params: trtp.TensorDesc, num_classes: int, channels: npt.NDArray[np.int32], tile: int
    ) -> trtp.TensorDesc:
        return asap_out(labels, params, None, num_classes, channels, tile)

    @trtp.autotune(plain)
    def asap_formats(labels, params, outputs):
        return [trtp.AutoTuneCombination("INT32, FP32|FP16, UINT8", "LINEAR")]

    @trtp.aot_impl(plain)
    def asap_plain_aot(labels, params, num_classes: int, channels, tile: int, outputs, tactic):
        return asap_aot(labels, params, num_classes, channels, tile)

    @trtp.register(with_extra)
    def asap_extra_desc(
        labels: trtp.TensorDesc, params: trtp.TensorDesc, extra: trtp.TensorDesc, num_classes: int,
        channels: npt.NDArray[np.int32], tile: int,
    ) -> trtp.TensorDesc:  # fmt: skip
        return asap_out(labels, params, extra, num_classes, channels, tile)

    @trtp.autotune(with_extra)
    def asap_extra_formats(labels, params, extra, outputs):
        return [trtp.AutoTuneCombination("INT32, FP32|FP16, FP32|FP16, UINT8", "LINEAR")]

    @trtp.aot_impl(with_extra)
    def asap_extra_aot(labels, params, extra, num_classes: int, channels, tile: int, outputs, tactic):
        return asap_aot(labels, params, num_classes, channels, tile)
