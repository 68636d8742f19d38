"""TensorRT plugin logic without TensorRT or a GPU: shape/type rules, the plugin calling convention
run through the interpreted kernels, the PTX TensorRT would embed, and the tensorrt.plugin adapter."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from rtgan.errors import ConfigError
from rtgan.kernels import plugins as P
from rtgan.kernels.asap_mlp import asap_mlp_reference
from rtgan.kernels.spade_norm import norm_denorm_reference

triton = pytest.importorskip("triton")

ROOT = Path(__file__).parents[2]
D = P.Desc


class Sym:
    """A stand-in for TensorRT's symbolic dims: any arithmetic yields another symbol."""

    def __init__(self, text):
        self.text = text

    def _op(self, other, op):
        return Sym(f"({self.text}{op}{getattr(other, 'text', other)})")

    def __mul__(self, other):
        return self._op(other, "*")

    __rmul__ = __mul__

    def __repr__(self):
        return self.text


def sym_cdiv(a, b):
    return Sym(f"cdiv({getattr(a, 'text', a)},{b})")


# -- shape and type rules ---------------------------------------------------------------------------
def test_spade_rule_accepts_every_mode_and_keeps_x():
    x = D((2, 8, 16, 16), "float16")
    for gamma in (D((2, 8, 16, 16), "float16"), D((2, 8), "float16")):  # spatial or AdaIN
        for stats in (D((8,), "float32"), D((2, 8), "float32")):  # running or per-sample
            assert P.spade_norm_denorm_output(x, gamma, gamma, stats, stats) == x


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(x=D((2, 8, 16), "float32")), "rank 3"),
        (dict(x=D((2, 8, 16, 16), "int32")), "float32 or float16"),
        (dict(gamma=D((2, 8, 16, 16), "float16")), "gamma is float16"),
        (dict(gamma=D((2, 8, 16, 15), "float32")), "does not match"),
        (dict(mean=D((8,), "float16")), "mean must be float32"),
        (dict(mean=D((7,), "float32"), var=D((7,), "float32")), "7 channels"),
        (dict(var=D((2, 8), "float32")), "same rank"),
    ],
)
def test_spade_rule_names_the_bad_input(change, message):
    args = dict(x=D((2, 8, 16, 16), "float32"), gamma=D((2, 8, 16, 16), "float32"),
                beta=D((2, 8, 16, 16), "float32"), mean=D((8,), "float32"), var=D((8,), "float32"))  # fmt: skip
    args.update(change)
    with pytest.raises(P.PluginShapeError, match=message) as info:
        P.spade_norm_denorm_output(**args)
    assert isinstance(info.value, ConfigError) and "rtgan::SpadeNormDenorm" in str(info.value)


CH = [15 + 16, 32, 32, 32, 3]  # the bundled landscape model: 15 classes, tile 16, width 32


def test_asap_rule_gives_uint8_image_and_checks_the_mlp():
    labels, params = (
        D(
            (
                2,
                256,
                512,
            ),
            "int32",
        ),
        D((2, 16, 32, P.asap_param_count(CH)), "float16"),
    )
    assert P.asap_pixel_mlp_output(labels, params, None, 15, CH, 16) == D((2, 256, 512, 3), "uint8")
    extra = D((2, 5, 256, 512), "float16")  # an edge and 4 noise channels
    ch = [15 + 5 + 16, 32, 32, 3]
    p = D((2, 16, 32, P.asap_param_count(ch)), "float16")
    assert P.asap_pixel_mlp_output(labels, p, extra, 15, ch, 16).dtype == "uint8"
    with pytest.raises(P.PluginShapeError, match="channels imply 5"):
        P.asap_pixel_mlp_output(labels, p, D((2, 4, 256, 512), "float16"), 15, ch, 16)
    with pytest.raises(P.PluginShapeError, match="does not match labels"):
        P.asap_pixel_mlp_output(labels, p, D((2, 5, 128, 512), "float16"), 15, ch, 16)
    with pytest.raises(P.PluginShapeError, match="no extra input"):
        P.asap_pixel_mlp_output(labels, p, None, 15, ch, 16)  # channels say 5 extra, none given
    with pytest.raises(P.PluginShapeError, match="needs"):
        P.asap_pixel_mlp_output(labels, D((2, 16, 32, 100), "float16"), None, 15, CH, 16)
    with pytest.raises(P.PluginShapeError, match="times tile"):
        P.asap_pixel_mlp_output(D((2, 250, 512), "int32"), params, None, 15, CH, 16)
    with pytest.raises(P.PluginShapeError, match="do not fit"):
        P.asap_pixel_mlp_output(labels, params, extra, 15, CH, 16)  # CH has no room for extra channels
    with pytest.raises(P.PluginShapeError, match="int32"):
        P.asap_pixel_mlp_output(D((2, 256, 512), "float32"), params, None, 15, CH, 16)
    with pytest.raises(P.PluginShapeError, match="power of two"):
        P.asap_pixel_mlp_output(labels, params, None, 15, CH, 12)


def test_rules_and_launch_take_symbolic_dims():
    n, h, w = Sym("N"), Sym("H"), Sym("W")
    x = D((n, 8, h, w), "float32")
    assert P.spade_norm_denorm_output(x, x, x, D((8,), "float32"), D((8,), "float32")) is not None
    grid, scalars = P.spade_launch(x, x, D((n, 8), "float32"), sym_cdiv)
    assert repr(grid) == "((N*8), cdiv((H*W),1024))"
    assert [repr(s) for s in scalars] == ["8", "(H*W)", "((H*W)*8)", "(H*W)", "1", "8"]
    labels, params = D((n, h, w), "int32"), D((n, Sym("HL"), Sym("WL"), P.asap_param_count(CH)), "float32")
    assert P.asap_pixel_mlp_output(labels, params, None, 15, CH, 16).shape == (n, h, w, 3)


# -- the plugin calling convention, run through the interpreted kernels ---------------------------
@pytest.mark.parametrize("stats_rank", [1, 2])
@pytest.mark.parametrize("adain", [False, True])
def test_spade_kernel_as_tensorrt_launches_it(stats_rank, adain):
    # TensorRT passes the plugin's inputs, the launch scalars, then the output: nothing else
    from rtgan.kernels.spade_norm import _norm_denorm, kernel_signature

    g = torch.Generator().manual_seed(0)
    n, c, h, w = 2, 3, 9, 37
    x = torch.randn(n, c, h, w, generator=g) * 2 + 1
    side = (n, c) if adain else (n, c, h, w)
    gamma, beta = torch.randn(side, generator=g), torch.randn(side, generator=g)
    mean = torch.randn((c,) if stats_rank == 1 else (n, c), generator=g)
    var = torch.rand(mean.shape, generator=g) + 0.5
    y = torch.empty_like(x)
    descs = [D(t.shape, "float32") for t in (x, gamma, mean)]
    grid, scalars = P.spade_launch(*descs, triton.cdiv)
    _, consts = kernel_signature("fp32", instance=False, eps=1e-5, slope=0.2)
    # PARTS is a compile-time constant of the plugin's kernel, so the output pointer follows the scalars
    _norm_denorm[grid](x, gamma, beta, mean, var, None, *scalars, y_ptr=y,
                       **{k: v for k, v in consts.items() if k != "part_ptr"})  # fmt: skip
    torch.testing.assert_close(y, norm_denorm_reference(x, gamma, beta, mean, var, 1e-5, 0.2), atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("n_extra", [0, 3])
def test_asap_kernel_as_tensorrt_launches_it(n_extra):
    from rtgan.kernels.asap_mlp import _asap_mlp, kernel_signature

    g = torch.Generator().manual_seed(1)
    classes, tile, b, h, w = 5, 16, 2, 32, 48
    ch = [classes + n_extra + 16, 16, 16, 3]
    labels = torch.randint(0, classes, (b, h, w), generator=g, dtype=torch.int32)
    params = torch.randn(b, P.asap_param_count(ch), h // tile, w // tile, generator=g) * 0.3
    extra = torch.randn(b, n_extra, h, w, generator=g) if n_extra else None
    last = params.permute(0, 2, 3, 1).contiguous()  # the plugin's params input: channels-last
    grid, scalars = P.asap_launch(D(labels.shape, "int32"), D(last.shape, "float32"), tile, triton.cdiv)
    _, consts, warps = kernel_signature("fp32", classes, ch, tile, n_extra, uint8=True)
    out = torch.empty(b, h, w, 3, dtype=torch.uint8)
    consts.pop("extra_ptr", None)
    _asap_mlp[grid](labels, last, extra, *scalars, out, **consts, num_warps=warps)
    ref = asap_mlp_reference(labels, params, classes, ch, tile, extra, uint8=True)
    diff = (out.int() - ref.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3


# -- the PTX TensorRT embeds ----------------------------------------------------------------------
PTX_SCRIPT = """
import json
from rtgan.kernels import plugins as P
from rtgan.kernels.aot import ptxas
rows = []
for arch in (80, 86, 89, 90):
    for dt in ("float32", "float16"):
        rows.append(("spade", arch, dt, False, P.spade_kernel(dt, 1e-5, 0.2, arch)))
for arch, dt, extra in ((86, "float16", 0), (90, "float32", 5)):
    ch = [15 + extra + 16, 32, 32, 32, 3]
    rows.append(("asap", arch, dt, extra > 0, P.asap_kernel(dt, 15, ch, 16, arch)))
out = []
for kind, arch, dt, edges, k in rows:
    cubin, log = ptxas(k.ptx, arch)
    out.append({"kind": kind, "arch": arch, "dtype": dt, "edges": edges, "name": k.name, "params": k.params,
                "warps": k.num_warps, "ptx": k.ptx, "cubin": len(cubin), "elf": cubin[:4] == b"\\x7fELF"})
print(json.dumps(out))
"""


def test_plugin_ptx_takes_exactly_trt_arguments_and_assembles():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # compile, do not interpret
    res = subprocess.run([sys.executable, "-c", PTX_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(res.stdout)
    assert len(rows) == 10
    for r in rows:
        assert r["elf"] and r["cubin"] > 1000, r["name"]
        assert f".version {P.PTX_VERSION // 10}.{P.PTX_VERSION % 10}" in r["ptx"]
        entry = r["ptx"].split(f".entry {r['name']}(")[1].split(")")[0]
        # inputs + int32 scalars + output; Triton's scratch pointers are gone
        want = 5 + 6 + 1 if r["kind"] == "spade" else 2 + r["edges"] + 5 + 1
        assert entry.count(".param") == r["params"] == want, (r["kind"], r["arch"], entry)
        assert entry.count(".param .u32") == (6 if r["kind"] == "spade" else 5)


def test_strip_scratch_params_refuses_used_parameters():
    ptx = ".entry k(\n\t.param .u64 k_param_0,\n\t.param .u64 k_param_1\n)\n{\n\tld.param.b64 %rd1, [k_param_1];\n}"
    with pytest.raises(ValueError, match="k_param_1"):
        P.strip_scratch_params(ptx, "k", 1)
    unused = ptx.replace("[k_param_1]", "[k_param_0]")
    assert "k_param_1" not in P.strip_scratch_params(unused, "k", 1)


# -- the tensorrt.plugin adapter, against a stand-in of that API ----------------------------------
def _fake_tensorrt():
    trt = types.SimpleNamespace(float32="f32", float16="f16", int32="i32", uint8="u8")
    registry = {}

    def deco(kind):
        def outer(pid):
            def inner(fn):
                registry[(kind, pid)] = fn
                return fn

            return inner

        return outer

    class TensorDesc:
        def __init__(self, shape, dtype):
            self.shape_expr, self.ndim, self.dtype = tuple(shape), len(shape), dtype

        def like(self):
            return TensorDesc(self.shape_expr, self.dtype)

    trtp = types.SimpleNamespace(
        register=deco("register"), autotune=deco("autotune"), aot_impl=deco("aot"), TensorDesc=TensorDesc,
        KernelLaunchParams=types.SimpleNamespace, SymInt32=lambda v: ("i32", v),
        SymIntExprs=types.SimpleNamespace(from_tuple=tuple), cdiv=triton.cdiv,
        AutoTuneCombination=lambda *a: a, from_shape_expr=lambda shape, dtype: TensorDesc(shape, dtype),
    )  # fmt: skip
    return trt, trtp, registry


def test_tensorrt_adapter_registers_rules_and_aot_launches(monkeypatch):
    from rtgan.kernels import trt_plugins

    compiled = []

    def fake_kernel(*args):  # compilation itself is covered above; here only what goes to TensorRT
        compiled.append(args)
        return P.PluginKernel("k", ".entry k()", 4, 512, 12)

    monkeypatch.setattr(P, "spade_kernel", fake_kernel)
    monkeypatch.setattr(P, "asap_kernel", fake_kernel)
    trt, trtp, reg = _fake_tensorrt()
    trt_plugins.register(arch=86, trt=trt, trtp=trtp)
    ids = {pid for _, pid in reg}
    assert ids == {"rtgan::SpadeNormDenorm", "rtgan::AsapPixelMlp", "rtgan::AsapPixelMlpExtra"}

    T = trtp.TensorDesc
    x, st = T((2, 8, 16, 16), "f16"), T((8,), "f32")
    assert reg["register", "rtgan::SpadeNormDenorm"](x, x, x, st, st, 1e-5, 0.2).shape_expr == x.shape_expr
    with pytest.raises(P.PluginShapeError):
        reg["register", "rtgan::SpadeNormDenorm"](x, T((2, 8, 16, 16), "f32"), x, st, st, 1e-5, 0.2)
    name, ptx, launch, extra = reg["aot", "rtgan::SpadeNormDenorm"](x, x, x, st, st, 1e-5, 0.2, (x,), 0)
    assert compiled[-1] == ("float16", 1e-5, 0.2, 86)
    assert name == b"k" and ptx.startswith(b".entry")
    assert (launch.grid_x, launch.grid_y, launch.block_x, launch.shared_mem) == (16, 1, 128, 512)
    assert extra == tuple(("i32", v) for v in (8, 256, 2048, 256, 1, 0))

    trt_plugins.register(arch=90, trt=trt, trtp=trtp)  # registered once; a second call retargets
    reg["aot", "rtgan::SpadeNormDenorm"](x, x, x, st, st, 1e-5, 0.2, (x,), 0)
    assert compiled[-1][-1] == 90 and len({pid for _, pid in reg}) == 3

    labels, params = T((1, 32, 48), "i32"), T((1, 2, 3, P.asap_param_count(CH)), "f32")
    out = reg["register", "rtgan::AsapPixelMlp"](labels, params, 15, CH, 16)
    assert out.shape_expr == (1, 32, 48, 3) and out.dtype == "u8"
    name, ptx, launch, extra = reg["aot", "rtgan::AsapPixelMlp"](labels, params, 15, CH, 16, (out,), 0)
    assert compiled[-1] == ("float32", 15, CH, 16, 90)
    assert (launch.grid_x, launch.grid_y) == (6, 4)
    assert extra == tuple(("i32", v) for v in (32, 48, 2, 3, params.shape_expr[3]))

    ch = [15 + 4 + 16, *CH[1:]]  # four noise channels
    params = T((1, 2, 3, P.asap_param_count(ch)), "f32")
    noise = T((1, 4, 32, 48), "f32")
    out = reg["register", "rtgan::AsapPixelMlpExtra"](labels, params, noise, 15, ch, 16)
    assert out.shape_expr == (1, 32, 48, 3) and out.dtype == "u8"
    with pytest.raises(P.PluginShapeError, match="channels imply 4"):
        reg["register", "rtgan::AsapPixelMlpExtra"](labels, params, T((1, 3, 32, 48), "f32"), 15, ch, 16)
    reg["aot", "rtgan::AsapPixelMlpExtra"](labels, params, noise, 15, ch, 16, (out,), 0)
    assert compiled[-1] == ("float32", 15, ch, 16, 90)
