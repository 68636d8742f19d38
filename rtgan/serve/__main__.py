"""Serve rtgan engines with NVIDIA Triton Inference Server.

    python -m rtgan.serve repository rtgan/weights/landscape-asapnet/engine --out models
    python -m rtgan.serve check models
    python -m rtgan.serve run landscape-asapnet --grpc-port 8001     # PyTriton, in its own environment

`repository` writes a Triton model repository (serve it with NVIDIA's tritonserver container);
ARTIFACT is an exported engine directory, NAME=ARTIFACT names its model. `check` checks a repository
offline against its model files. `run` serves one engine on PyTriton: it needs numpy < 2, so it runs in
an environment of its own (docs/serving.md). Clients: rtgan.serve.Client, or any Triton client.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..utils import cli

PROG = "python -m rtgan.serve"


def parser() -> cli.Parser:
    ap = cli.Parser(PROG, __doc__)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("repository", help="write a Triton model repository from artifacts")
    r.add_argument("artifacts", nargs="+", metavar="ARTIFACT", help="exported engine directories (NAME=DIR names one)")
    r.add_argument("--out", required=True, metavar="REPO", help="repository folder: new, empty, or one rtgan wrote")
    r.add_argument(
        "--max-batch-size",
        type=int,
        metavar="N",
        help="largest batch per model, 0 for no batching (default: the artifact's max batch; OpenVINO 1)",
    )
    r.add_argument("--instances", type=int, default=1, metavar="N", help="model instances (instance_group count)")
    r.add_argument("--threads", type=int, metavar="N", help="CPU threads per instance (default: the runtime's)")
    r.add_argument("--queue-delay-us", type=int, default=2000, metavar="US", help="dynamic batching queue delay")
    r.add_argument("--segmenter", metavar="SEG.onnx", help="add a photo -> painting ensemble with this ONNX segmenter")
    r.add_argument("--mapping", metavar="MAP.json", help="the segmenter's classes -> the generator's label ids")

    c = sub.add_parser("check", help="check a model repository offline against its model files")
    c.add_argument("repo", metavar="REPO")

    s = sub.add_parser("run", help="serve one engine on PyTriton (needs numpy < 2: its own environment)")
    s.add_argument("artifact", metavar="ARTIFACT", help="an exported engine directory, or a bundled model name")
    s.add_argument("--name", help="model name (default: from the artifact, e.g. landscape-asapnet)")
    s.add_argument("--host", default="0.0.0.0", help="address to listen on")
    s.add_argument("--http-port", type=int, default=8000, metavar="PORT")
    s.add_argument("--grpc-port", type=int, default=8001, metavar="PORT")
    s.add_argument("--metrics-port", type=int, default=8002, metavar="PORT")
    s.add_argument("--max-batch-size", type=int, metavar="N", help="largest batch (default: the artifact's)")
    s.add_argument("--queue-delay-us", type=int, default=2000, metavar="US", help="dynamic batching queue delay")
    s.add_argument("--backend", default="auto", help="runtime for the artifact; auto: the best that runs here")
    s.add_argument("--threads", type=int, metavar="N", help="CPU threads of the runtime (default: all cores)")
    s.add_argument("--seed", type=int, help="seed of the latents sampled for requests without z (none: random)")
    s.add_argument("--exit-timeout", type=int, default=5, metavar="S",
                   help="on SIGTERM/SIGINT, seconds to let in-flight requests finish")  # fmt: skip
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)

    def body() -> int:
        if args.command == "repository":
            return _repository(args)
        if args.command == "check":
            from .check import check_repository

            for line in check_repository(args.repo):
                print(line)
            return 0
        if args.command == "run":
            from .pytriton_server import serve

            return serve(args)
        ap.print_help()
        return 0

    return cli.run(body, PROG)


def _repository(args) -> int:
    from .check import check_repository
    from .repository import write_repository

    models = write_repository(
        args.artifacts,
        args.out,
        max_batch_size=args.max_batch_size,
        instances=args.instances,
        threads=args.threads,
        queue_delay_us=args.queue_delay_us,
        segmenter=args.segmenter,
        mapping=args.mapping,
    )
    for line in check_repository(args.out):
        print(line)
    gpu = any(m.device == "KIND_GPU" for m in models)
    print(f"wrote {args.out}: {len(models)} model(s); serve it with NVIDIA's container (docs/serving.md):")
    print(f"  docker run --rm {'--gpus all ' if gpu else ''}-p 8000:8000 -p 8001:8001 -p 8002:8002 "
          f"-v {Path(args.out).resolve()}:/models nvcr.io/nvidia/tritonserver:<yy.mm>-py3 "
          "tritonserver --model-repository=/models")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
