"""Where int8 loses fidelity on a bundled model: per-map PSNR of OpenVINO int8 variants (NNCF
post-training quantization, 16 calibration maps) against the fp32 PyTorch reference on all 24 of
export's landscape maps, their speed beside fp32 and bf16, and, on the worst map, each convolution
quantized alone.

    python benchmarks/int8_sensitivity.py --model landscape-pix2pixhd --out benchmarks/results/int8_sensitivity

Variants (what NNCF leaves in float, by OpenVINO op type):
- `all`: NNCF's default (what export starts from);
- `norm inputs float`: the inputs of instance norm (`MVN`) stay float;
- `conv inputs only`: only convolution inputs are quantized (`MVN`, `Add`, `Multiply`, `Interpolate` float);
- `calibrated on the worst map alone`: NNCF's default, its ranges taken from the worst map only
  (whether that map is hurt by ranges it was not calibrated for, or by int8 steps as such);
- `accuracy control`: NNCF's accuracy control aiming 42 dB on the validation maps plus the worst
  map, norm inputs float (how far reverting layers gets at all).
Timings alternate between variants in one process; medians.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from rtgan import weights
from rtgan.engine.backends import openvino_config
from rtgan.export import export, quantize
from rtgan.export.exporter import _alternating_medians, psnr, reference_image
from rtgan.models import load

VARIANTS = {"all": [], "norm inputs float": ["MVN"], "conv inputs only": ["MVN", "Add", "Multiply", "Interpolate"]}
AC_TARGET_DB = 42.0
SELF_CALIBRATED = "nothing, calibrated on the worst map alone"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="landscape-pix2pixhd", choices=weights.BUNDLED)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default="benchmarks/results/int8_sensitivity")
    args = ap.parse_args()
    import nncf
    import openvino as ov

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load(weights.path(args.model))
    tmp = Path(tempfile.mkdtemp())
    artifact = export(model, height=args.size, width=args.size, backend="onnxruntime", out=tmp / "fp32", progress=False)
    manifest = json.loads((artifact / "manifest.json").read_text())
    calib, val, held = quantize.calibration_sets(manifest)
    maps = calib + val + held
    refs = [reference_image(model, f) for f in maps]
    core = ov.Core()
    fp32 = core.read_model(str(artifact / "model.onnx"))

    def per_map(m) -> list[float]:
        c = core.compile_model(m, "CPU", openvino_config("int8"))
        return [round(min(99.0, psnr(c(f)[0], r)), 1) for f, r in zip(maps, refs)]

    def quantized(types=(), names=()):
        scope = nncf.IgnoredScope(types=list(types), names=list(names), validate=False)
        return nncf.quantize(fp32, nncf.Dataset(calib), subset_size=len(calib), ignored_scope=scope)

    report: dict = {"model": args.model, "size": args.size, "maps": len(maps), "variants": {}}
    graphs = {name: quantized(types) for name, types in VARIANTS.items()}
    for name, g in graphs.items():
        report["variants"][name] = {"psnr_db": per_map(g)}
        print(name, report["variants"][name]["psnr_db"], flush=True)
    worst = int(np.argmin(report["variants"]["all"]["psnr_db"]))
    report["worst_map"] = worst

    # calibrated on the worst map alone: if that map were only outside the calibrated ranges, this would fix it
    own = nncf.quantize(fp32, nncf.Dataset([maps[worst]]), subset_size=1)
    graphs[SELF_CALIBRATED] = own
    report["variants"][SELF_CALIBRATED] = {"psnr_db": per_map(own)}
    print(SELF_CALIBRATED, report["variants"][SELF_CALIBRATED]["psnr_db"], flush=True)

    # how far reverting layers gets: NNCF's accuracy control, with the worst map among its validation maps
    val_maps, val_refs = val + [maps[worst]], refs[len(calib) : len(calib) + len(val)] + [refs[worst]]

    def validate(compiled, data) -> float:
        return min(min(99.0, psnr(compiled(f)[0], val_refs[i])) for i, f in enumerate(data))

    started = time.perf_counter()
    ac = nncf.quantize_with_accuracy_control(
        fp32, nncf.Dataset(calib), nncf.Dataset(val_maps), validate, max_drop=99.0 - AC_TARGET_DB,
        drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calib),
        ignored_scope=nncf.IgnoredScope(types=["MVN"], validate=False),
    )  # fmt: skip
    graphs["accuracy control"] = ac
    report["variants"]["accuracy control"] = {
        "psnr_db": per_map(ac),
        "seconds": round(time.perf_counter() - started, 1),
        "fake_quantize_ops": sum(op.get_type_name() == "FakeQuantize" for op in ac.get_ops()),
    }
    print("accuracy control", report["variants"]["accuracy control"], flush=True)

    compiled = {name: core.compile_model(g, "CPU", openvino_config("int8")) for name, g in graphs.items()}
    compiled["fp32"] = core.compile_model(fp32, "CPU", openvino_config("fp32"))
    compiled["bf16"] = core.compile_model(fp32, "CPU", openvino_config("bf16"))
    for c in compiled.values():
        c(maps[0])
    seconds = _alternating_medians(compiled, maps[0], args.repeats)
    report["ms"] = {name: round(s * 1e3, 1) for name, s in seconds.items()}

    # each convolution quantized alone (conv inputs only), on the worst map and the median of the others
    convs = [op.get_friendly_name() for op in fp32.get_ordered_ops() if op.get_type_name() == "Convolution"]
    alone = {}
    for name in convs:
        g = quantized(VARIANTS["conv inputs only"], [c for c in convs if c != name])
        dbs = per_map(g)
        alone[name] = {"worst_map_db": dbs[worst], "median_db": float(np.median(dbs))}
        print(name, alone[name], flush=True)
    report["one_conv_quantized"] = alone

    (out / "int8_sensitivity.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"{args.model} {args.size}x{args.size}, {len(maps)} maps, worst map #{worst}; "
        f"fp32 {report['ms']['fp32']} ms, bf16 {report['ms']['bf16']} ms",
        "",
        "| int8 variant | ms | median dB | worst dB | maps >= 40 dB |",
        "|---|---|---|---|---|",
    ]
    for name, v in report["variants"].items():
        d, ms = v["psnr_db"], report["ms"][name]
        lines.append(f"| {name} | {ms} | {np.median(d):.1f} | {min(d):.1f} | {sum(x >= 40 for x in d)}/{len(d)} |")
    (out / "int8_sensitivity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
