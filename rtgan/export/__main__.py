"""python -m rtgan.export --preset spade-cityscapes --weights G.pth --height 256 --width 512 --backend openvino"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import RtganError
from ..utils.cli import load_model, parse_sets
from .formats import FORMATS, markdown_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rtgan.export",
        description=__doc__,
        epilog="backends:\n" + markdown_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--arch", choices=["spade", "asapnet", "pix2pixhd"])
    ap.add_argument("--weights", help="official latest_net_G.pth, or an rtgan model directory; none: random weights")
    ap.add_argument("--encoder", help="official latest_net_E.pth of a SPADE VAE model")
    ap.add_argument("--preset")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="official option override")
    ap.add_argument("--height", type=int, required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--backend", default="onnxruntime", help=", ".join(FORMATS))
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    ap.add_argument("--compute-capability", help="TensorRT-RTX offline target, e.g. SM86")
    ap.add_argument("--max-batch", type=int, default=4)
    ap.add_argument("--out", help="artifact directory (default: the rtgan cache)")
    ap.add_argument("--force", action="store_true", help="rebuild even if a matching artifact exists")
    ap.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    ap.add_argument(
        "--plugins",
        action="store_true",
        help="also write model.plugins.onnx (fused kernels as TensorRT plugin nodes); tensorrt builds from it",
    )
    args = ap.parse_args(argv)
    try:
        from . import export

        sets = parse_sets(args.set)
        if args.encoder:
            sets["encoder"] = args.encoder
        model, source = load_model(args.arch, args.weights, args.preset, sets, args.height, args.width)
        print(f"{model.config.arch} from {source}")
        out = export(
            model,
            height=args.height,
            width=args.width,
            backend=args.backend,
            precision=args.precision,
            out=args.out,
            compute_capability=args.compute_capability,
            max_batch=args.max_batch,
            force=args.force,
            verify=not args.no_verify,
            plugins=args.plugins,
        )
    except RtganError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"wrote {out} ({manifest['backend']}, {manifest['precision']}, {manifest['export_seconds']} s)")
    if "fidelity" in manifest:
        print(f"fidelity vs PyTorch: {manifest['fidelity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
