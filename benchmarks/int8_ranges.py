"""What export's OpenVINO int8 settings buy: per-map PSNR and speed of NNCF post-training int8 with
its default ranges (which clip the tails) or with min-max ranges, on every op input or on the
convolution inputs only, against the fp32 PyTorch reference; fp32 and bf16 timed beside them.

    python benchmarks/int8_ranges.py --out benchmarks/results/int8_ranges

No accuracy control here (export adds it on top): each variant is one `nncf.quantize` on export's
16 calibration maps. A bundled model is measured on all 24 of export's maps (calibration,
validation, held-out); a preset, on realistic random weights, on the 8 it was not calibrated on.
Timings alternate between the variants in one process; medians.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from rich.progress import track

from rtgan import weights
from rtgan.engine.backends import openvino_config
from rtgan.export import export, quantize
from rtgan.export.exporter import _alternating_medians, psnr, reference_image
from rtgan.models import get_model, load
from rtgan.models.init import randomize_like_trained

BUNDLED = ["landscape-pix2pixhd", "landscape-spade", "landscape-asapnet"]
PRESETS = {"spade-cityscapes": (256, 512), "asapnet-cityscapes": (256, 512), "pix2pixhd-label2city-512p": (256, 512)}


def variants() -> dict[str, dict]:
    """Export's recipes (`quantize.INT8_RECIPES`) and, to separate the two changes, NNCF's default
    ranges on the convolution inputs."""
    import nncf

    conv = nncf.IgnoredScope(types=quantize.FLOAT_INPUT_OPS, validate=False)
    return {r: quantize.openvino_int8_settings(r) for r in quantize.INT8_RECIPES} | {
        "convolution inputs, NNCF's default ranges": {"ignored_scope": conv}
    }


def measure(name: str, model, height: int, width: int, repeats: int, bundled: bool) -> dict:
    import nncf
    import openvino as ov

    tmp = Path(tempfile.mkdtemp())
    art = export(model, height=height, width=width, backend="onnxruntime", out=tmp / "fp32", progress=False)
    manifest = json.loads((art / "manifest.json").read_text())
    calib, val, held = quantize.calibration_sets(manifest)
    maps = (calib if bundled else []) + val + held
    refs = [reference_image(model, f) for f in track(maps, description=f"{name}: PyTorch references")]
    core = ov.Core()
    fp32 = core.read_model(str(art / "model.onnx"))
    report: dict = {"size": [height, width], "maps": len(maps), "variants": {}}
    compiled = {}
    for label, kwargs in variants().items():
        q = nncf.quantize(fp32, nncf.Dataset(calib), subset_size=len(calib), **kwargs)
        c = compiled[label] = core.compile_model(q, "CPU", openvino_config("int8"))
        db = [round(min(99.0, psnr(c(f)[0], r)), 1) for f, r in zip(maps, refs)]
        report["variants"][label] = {"psnr_db": db}
        print(f"{name} | {label}: median {np.median(db):.1f} dB, worst {min(db):.1f} dB", flush=True)
    compiled["fp32"] = core.compile_model(fp32, "CPU", openvino_config("fp32"))
    compiled["bf16"] = core.compile_model(fp32, "CPU", openvino_config("bf16"))
    for c in compiled.values():
        c(maps[0])
    seconds = _alternating_medians(compiled, maps[0], repeats)
    report["ms"] = {k: round(s * 1e3, 1) for k, s in seconds.items()}
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=BUNDLED + list(PRESETS), choices=BUNDLED + list(PRESETS))
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", default="benchmarks/results/int8_ranges")
    args = ap.parse_args()
    from rtgan.utils import cpu

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"cpu": cpu.summary(), "models": {}}
    for name in args.models:
        if name in BUNDLED:
            model, (h, w) = load(weights.path(name)), (256, 256)
        else:
            h, w = PRESETS[name]
            model = randomize_like_trained(get_model(name), h, w, iterations=4)
        report["models"][name] = measure(name, model, h, w, args.repeats, name in BUNDLED)
        (out / "int8_ranges.json").write_text(json.dumps(report, indent=1) + "\n")

    header = "| model | int8 variant | ms | × bf16 | median dB | worst dB | maps ≥ 40 dB |"
    lines = [f"CPU: {report['cpu']}", "", header, "|---|---|---|---|---|---|---|"]
    for name, r in report["models"].items():
        ms = r["ms"]
        lines.append(f"| {name} {r['size'][0]}x{r['size'][1]} | fp32 / bf16 | {ms['fp32']} / {ms['bf16']} | | | | |")
        for label, v in r["variants"].items():
            d = v["psnr_db"]
            lines.append(f"| | {label} | {ms[label]} | {ms['bf16'] / ms[label]:.2f} | {np.median(d):.1f} | "
                         f"{min(d):.1f} | {sum(x >= 40 for x in d)}/{len(d)} |")  # fmt: skip
    (out / "int8_ranges.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
