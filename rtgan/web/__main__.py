"""`python -m rtgan.web`: serve the paint studio (see `rtgan.web`); Ctrl-C stops it."""

from __future__ import annotations

import signal
import sys

from .. import weights
from ..formats import get_format
from ..utils import cli
from ..utils.extras import require
from . import __doc__ as DOC

PROG = "python -m rtgan.web"


def parser() -> cli.Parser:
    ap = cli.Parser(PROG, DOC)
    ap.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME_OR_PATH",
        help=f"bundled model ({', '.join(weights.BUNDLED)}), model dir or engine dir; repeat to serve several, "
        f"the first is the page's default (default: {weights.DEFAULT}, then the other bundled ones)",
    )
    ap.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on: 127.0.0.1 keeps the studio on this machine; 0.0.0.0 opens it to the network, "
        "with no authentication (anyone who reaches the port can paint with the models)",
    )
    ap.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    ap.add_argument("--backend", default="auto", help="auto, openvino, onnxruntime, tensorrt, ...")
    ap.add_argument("--threads", type=int, help="engine threads (default: the runtime's)")
    cli.add_size(ap, help="size model directories are exported at, e.g. 512x512 (default: their own)")
    ap.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="auto: an fp32 engine runs in bf16 on OpenVINO where export measured it faster and >=45 dB",
    )
    ap.add_argument("--max-message-mb", type=float, default=16, help="largest message or request body, MiB")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="uvicorn's")
    return ap


def serve(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    require("fastapi", "web", "the web studio")
    require("uvicorn", "web", "the web studio")
    from .app import create_app
    from .server import bind, is_loopback, server, url

    if not 0 <= a.port <= 65535:
        parser().error(f"--port must be in 0..65535, got {a.port}")
    backend = a.backend if a.backend == "auto" else get_format(a.backend).backend  # a misspelling, first
    if a.models:
        models = a.models
    else:  # only the bundled models that this install has
        models = [weights.DEFAULT, *[m for m in weights.BUNDLED if m != weights.DEFAULT]]
        models = [m for m in models if (weights.path(m) / "config.json").is_file()] or [weights.DEFAULT]
    sock = bind(a.host, a.port)  # before the engines open: a port in use fails at once
    if not is_loopback(a.host):
        print(f"{PROG}: warning: listening on {a.host}: the studio is open to the network, with no "
              "authentication; --host 127.0.0.1 keeps it on this machine", file=sys.stderr)  # fmt: skip
    limit = int(a.max_message_mb * 2**20)
    app = create_app(models, backend=backend, threads=a.threads, size=cli.size_of(a), precision=a.precision,
                     max_message=limit)  # fmt: skip
    names = ", ".join(f"{m.name} {m.width}x{m.height} ({m.engine.backend_name} {m.engine.precision})"
                      for m in app.state.studio.models.values())  # fmt: skip
    print(f"rtgan web studio: {url(sock)}  (models: {names}; Ctrl-C stops)", flush=True)
    # uvicorn shuts down gracefully on SIGINT / SIGTERM, then raises the signal again for the handler
    # that was there before it: a no-op for SIGTERM and a caught KeyboardInterrupt make both exit 0
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server(app, limit, a.log_level).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{PROG}: stopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda: serve(argv), PROG)


if __name__ == "__main__":
    sys.exit(main())
