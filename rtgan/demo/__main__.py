"""`python -m rtgan.demo`: see `rtgan.demo` for the sources, keys and outputs."""

from __future__ import annotations

import sys

from .. import weights
from ..formats import get_format
from ..utils import cli
from . import __doc__ as DOC
from .app import Demo, DemoConfig
from .view import HELP

PROG = "python -m rtgan.demo"


def parser() -> cli.Parser:
    d = DemoConfig()
    ap = cli.Parser(PROG, DOC, epilog="keys:\n  " + "\n  ".join(HELP))
    ap.add_argument(
        "--source",
        default=d.source,
        help="camera index, video, image file/folder, labels:PATH or scene (default: camera 0, or the built-in "
        "scene when there is none; a camera index given here is never replaced)",
    )
    ap.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME_OR_DIR",
        help=f"bundled model ({', '.join(weights.BUNDLED)}), model dir or engine dir; repeat to "
        f"cycle with m (default: {weights.DEFAULT}, then the other bundled ones)",
    )
    cli.add_size(
        ap,
        help="size a model directory is exported at, e.g. 128x128 (default: the size it was trained at); "
        "an engine paints its own size",
    )
    ap.add_argument("--backend", default=d.backend, help="auto, openvino, onnxruntime, tensorrt, ...")
    ap.add_argument(
        "--precision",
        default=d.precision,
        choices=["auto", "fp32", "bf16"],
        help="auto: an fp32 engine runs in bf16 on OpenVINO where export measured it faster and >=45 dB",
    )
    ap.add_argument("--segmenter", default=d.segmenter, choices=["palette", "onnx"], help="camera frame -> labels")
    ap.add_argument("--seg-model", metavar="ONNX", help="ONNX segmentation network (--segmenter onnx)")
    ap.add_argument("--seg-mapping", metavar="JSON", help="JSON mapping its classes to ours (--segmenter onnx)")
    ap.add_argument("--paper", default=d.paper, help="class that blank paper becomes (palette segmenter); '' for none")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--headless",
        action="store_true",
        default=None,
        help="no window: write MP4, PNGs, latency (the default when no window can open)",
    )
    mode.add_argument("--window", dest="headless", action="store_false", help="insist on a window")
    ap.add_argument("--frames", type=int, help="stop after N shown frames (headless default 150)")
    ap.add_argument("--seconds", type=float, help="stop after this many seconds")
    ap.add_argument("--no-record", dest="record", action="store_false", help="headless: no demo.mp4")
    ap.add_argument("--out", default=d.out, help="folder for demo.mp4, snapshots, latency.json, canvases")
    ap.add_argument("--fps", type=float, default=d.fps, help="pace of scenes, stills and the canvas")
    ap.add_argument("--scale", type=int, default=d.scale, help="window zoom")
    ap.add_argument("--threads", type=int, help="engine threads (default: the runtime's)")
    ap.add_argument("--paint", action="store_true", help="start in paint mode")
    ap.add_argument("--canvas", help="label PNG to start painting from")
    ap.add_argument("--loop", action="store_true", help="loop video files")
    ap.add_argument(
        "--seed", type=int, default=d.seed, help="seed of the canvas layout and the VAE style (default: %(default)s)"
    )
    ap.add_argument(
        "--style-image",
        action="append",
        default=[],
        metavar="PATH",
        help="SEAN: a style image for the whole painting (each region styled by the same regions of it, fitted "
        "to the model size); repeat to cycle with t",
    )
    ap.add_argument(
        "--region-style",
        action="append",
        default=[],
        metavar="CLASS=PATH",
        help="SEAN: a style image for one class's regions (CLASS an id or a name; repeatable; over --style-image)",
    )
    ap.add_argument(
        "--walk-frames",
        type=int,
        metavar="N",
        help="StyleGAN: painted frames from one random z of the latent walk to the next (default 90)",
    )
    return ap


def parse(argv: list[str] | None = None) -> DemoConfig:
    ap = parser()
    a = ap.parse_args(argv)
    if a.frames is not None and a.frames < 1:
        ap.error("--frames must be at least 1")
    if a.walk_frames is not None and a.walk_frames < 1:
        ap.error("--walk-frames must be at least 1")
    models = tuple(a.models) if a.models else (weights.DEFAULT, *[m for m in weights.BUNDLED if m != weights.DEFAULT])
    if not a.models:  # only the bundled models that this install has
        models = tuple(m for m in models if (weights.path(m) / "config.json").is_file()) or (weights.DEFAULT,)
    return DemoConfig(
        source=a.source,
        models=models,
        size=cli.size_of(a),
        backend=a.backend if a.backend == "auto" else get_format(a.backend).backend,  # a misspelling, first
        precision=a.precision,
        segmenter=a.segmenter,
        seg_model=a.seg_model,
        seg_mapping=a.seg_mapping,
        paper=a.paper or None,
        headless=a.headless,
        frames=a.frames,
        seconds=a.seconds,
        record=a.record,
        out=a.out,
        fps=a.fps,
        scale=a.scale,
        threads=a.threads,
        paint=a.paint,
        canvas=a.canvas,
        loop=a.loop,
        seed=a.seed,
        style_images=tuple(a.style_image),
        region_styles=tuple(a.region_style),
        walk_frames=a.walk_frames,
    )


def main(argv: list[str] | None = None) -> int:
    # typed errors (a bad --size, a missing file, no display) are one line and exit 2; Ctrl-C before the
    # pipeline (and its own handler) started, while exporting or opening, is one line and exit 130
    return cli.run(lambda: Demo(parse(argv)).run(), PROG)


if __name__ == "__main__":
    sys.exit(main())
