"""Export a generator to an engine artifact.

    python -m rtgan.export --model landscape-asapnet --backend openvino
    python -m rtgan.export --preset spade-cityscapes --model latest_net_G.pth --size 256x512 --backend openvino
    python -m rtgan.export --preset oasis-ade20k --set noise_regions=8 --out oasis-local  # local-noise inputs

`--model` is a bundled model, an rtgan model directory or an official checkpoint (with --preset);
with --preset and no --model the weights are random (for measuring, not painting).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .. import catalog, presets, weights
from ..errors import ConfigError
from ..formats import ALIASES, FORMATS, check_can_export, check_options, get_format, markdown_table
from ..utils import cli

PROG = "python -m rtgan.export"


def parser() -> cli.Parser:
    ap = cli.Parser(PROG, __doc__, epilog="backends:\n" + markdown_table())
    src = ap.add_argument_group("model")
    src.add_argument(
        "--model",
        "--weights",
        dest="model",
        metavar="NAME_OR_PATH",
        help=f"bundled model ({', '.join(weights.BUNDLED)}), rtgan model directory, or official "
        "latest_net_G.pth (with --preset); default with --preset: random weights",
    )
    src.add_argument("--preset", metavar="NAME", help="official options by preset: " + ", ".join(presets.PRESETS))
    src.add_argument("--arch", metavar="NAME", help="architecture (else from the preset): " + ", ".join(presets.ARCHS))
    src.add_argument("--encoder", metavar="PTH", help="official latest_net_E.pth of a SPADE VAE model")
    cli.add_set(src, help="official option overrides, e.g. --set label_nc=35 no_instance=true")
    out = ap.add_argument_group("artifact")
    cli.add_size(out, help="fixed engine size (default: the model's own size)")
    out.add_argument("--backend", default="onnxruntime", help=", ".join(FORMATS) + f" (aliases: {', '.join(ALIASES)})")
    out.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "fp16", "bf16", "int8"],
        help="engine precision: fp16 on TensorRT; bf16 (openvino) and int8 (openvino, onnxruntime) on the CPU",
    )
    out.add_argument(
        "--min-psnr",
        type=float,
        metavar="DB",
        help="bf16/int8: refuse below this PSNR vs the fp32 reference on held-out maps (default: bf16 45, int8 30)",
    )
    out.add_argument(
        "--calibration",
        metavar="DIR",
        help="bf16/int8: a folder of label-id PNGs (image-in models: RGB images) to calibrate on "
        "(default: the model's own label space; rendered landscapes for image-in models)",
    )
    out.add_argument("--compute-capability", metavar="SMxx", help="TensorRT-RTX offline target, e.g. SM86")
    out.add_argument("--max-batch", type=int, help="largest batch a TensorRT plan takes (default: 4)")
    out.add_argument("--out", help="artifact directory: new, empty, or an earlier artifact (default: the rtgan cache)")
    out.add_argument("--force", action="store_true", help="rebuild even if a matching artifact exists")
    out.add_argument(
        "--compact",
        action="store_true",
        help="store the weights fp16 holds exactly as fp16 (same output, ~half the file)",
    )
    out.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    out.add_argument(
        "--plugins",
        action="store_true",
        help="also write model.plugins.onnx (fused kernels as custom nodes): tensorrt builds from it, OpenVINO runs "
        "ASAPNet's and OASIS's as rtgan's CPU ops (measured against the standard graph at export)",
    )
    return ap


def _preset_size(preset: presets.Preset) -> tuple[int, int] | None:
    o = preset.options
    return (round(o["crop_size"] / o.get("aspect_ratio", 1.0)), o["crop_size"]) if "crop_size" in o else None


def check(args) -> dict:
    """Every argument, checked before PyTorch is imported; returns what the export needs."""
    fmt = get_format(args.backend)
    check_can_export(fmt, args.precision, verify=not args.no_verify, compute_capability=args.compute_capability)
    preset = presets.get_preset(args.preset) if args.preset else None
    if args.arch is not None:
        presets.check_arch(args.arch)
        if preset is not None and args.arch != preset.arch:
            raise ConfigError(f"preset {preset.name!r} is a {preset.arch} preset, not {args.arch}")
    ref = catalog.resolve(args.model) if args.model else None
    if ref is not None and ref.kind == "engine":
        raise ConfigError(f"{args.model} is already an exported engine; run it with rtgan.Engine.load or the demo")
    if ref is not None and ref.kind == "official" and not (preset or args.arch):
        raise ConfigError(f"{args.model} is an official checkpoint: add --preset (one of {', '.join(presets.PRESETS)})")
    if ref is None and preset is None and args.arch is None:
        raise ConfigError(f"give --model (e.g. --model {weights.DEFAULT}) or --preset")
    if ref is not None and ref.kind == "model" and (args.preset or args.set):
        raise ConfigError(f"{args.model} records its own options; --preset/--set apply to official checkpoints only")
    size = cli.size_of(args) or (ref.natural_size() if ref is not None else None) or (preset and _preset_size(preset))
    if size is None:
        raise ConfigError("this model records no size: give --size HxW")
    given = {"compute_capability": args.compute_capability, "max_batch": args.max_batch,
             "min_psnr": args.min_psnr, "calibration": args.calibration}  # fmt: skip
    check_options(fmt, {k: v for k, v in given.items() if v is not None})
    if (args.min_psnr is not None or args.calibration is not None) and args.precision not in ("bf16", "int8"):
        raise ConfigError("--min-psnr and --calibration apply to --precision bf16 or int8")
    if args.calibration is not None and not Path(args.calibration).is_dir():
        raise ConfigError(f"--calibration {args.calibration}: no such folder (of label-id PNGs, or images)")
    if args.max_batch is not None and args.max_batch < 1:
        raise ConfigError(f"--max-batch must be at least 1, got {args.max_batch}")
    if args.out is not None:
        from ..engine.manifest import check_export_target

        check_export_target(args.out)
    return {"fmt": fmt, "preset": preset, "ref": ref, "size": size, "sets": cli.parse_sets(args.set)}


def build(args, plan: dict):
    """The generator to export, and where its weights came from."""
    from .. import models
    from ..models.init import randomize_like_trained

    ref, preset, sets = plan["ref"], plan["preset"], dict(plan["sets"])
    if args.encoder:
        sets["encoder"] = args.encoder
    if ref is not None and ref.kind == "model":
        return models.load(ref.path), str(ref.path)
    arch = preset.arch if preset else args.arch  # check() made sure the two agree
    if ref is not None:
        return models.load_official(arch, ref.path, preset=args.preset, **sets), str(ref.path)
    config = preset.config(**sets) if preset else models.make_config(arch, **sets)
    config.check_size(*plan["size"])  # before the (slow) weight statistics below
    return randomize_like_trained(models.build(config), *plan["size"]), "random weights (no --model)"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.perf_counter()

    def body() -> int:
        plan = check(args)
        from . import export

        model, source = build(args, plan)
        print(f"{model.config.arch} from {source}")
        h, w = plan["size"]
        out = export(
            model,
            height=h,
            width=w,
            backend=plan["fmt"].backend,
            precision=args.precision,
            out=args.out,
            compute_capability=args.compute_capability,
            max_batch=args.max_batch,
            force=args.force,
            verify=not args.no_verify,
            plugins=args.plugins,
            compact=args.compact,
            min_psnr=args.min_psnr,
            calibration=args.calibration,
        )
        manifest = json.loads((out / "manifest.json").read_text())
        wall = time.perf_counter() - started
        print(
            f"wrote {out} ({manifest['backend']}, {manifest['precision']}, {h}x{w}) in {wall:.1f} s "
            f"(export {manifest['export_seconds']} s)"
        )
        if "fidelity" in manifest:
            print(f"fidelity vs PyTorch: {manifest['fidelity']}")
        print(_next_steps(out, manifest))
        return 0

    return cli.run(body, PROG)


def _next_steps(out: Path, manifest: dict) -> str:
    where = out if not out.is_absolute() or not out.is_relative_to(Path.cwd()) else out.relative_to(Path.cwd())
    lines = ["next:"]
    if manifest["target"]["device"] != "cuda":
        lines.append(f"  python -m rtgan.demo --model {where}")
    lines.append(f"  python -m rtgan.generate --model {where} --out painting.png")
    lines.append(f"  python -c \"import rtgan; e = rtgan.Engine.load('{where}'); print(e.input_spec())\"")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
