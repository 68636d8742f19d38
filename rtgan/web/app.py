"""`create_app(models)`: the studio's FastAPI app: the page, the REST API and the WebSocket.

    app = create_app(["landscape-asapnet"])           # or {"name": engine} for engines already open
    uvicorn.run(app)                                  # python -m rtgan.web does this, and more

The models open once here (`open_engine`: bundled names, model or engine directories); every
connection and request shares them. `on_frame(painted)` is called after each painting a socket is
sent (`session.Painted`: connection, seq, model, the ids or picture painted, the painting): for
tests and instrumentation, called on the event loop, so it must be quick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .._version import __version__
from ..engine import Engine
from ..utils.extras import require

require("fastapi", "web", "the web studio")
from fastapi import FastAPI  # noqa: E402
from fastapi.responses import FileResponse  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402

from . import rest, session  # noqa: E402
from .models import Studio, open_models  # noqa: E402
from .protocol import __doc__ as PROTOCOL  # noqa: E402

STATIC = Path(__file__).parent / "static"
MAX_MESSAGE = 16 * 2**20  # bytes: a 2048x2048 16-bit label map is 8 MiB, a webcam JPEG well under 1


def create_app(
    models: Sequence[str] | Mapping[str, Engine],
    *,
    backend: str = "auto",
    threads: int | None = None,
    size: tuple[int, int] | None = None,
    precision: str | None = "auto",
    on_frame: Callable[[session.Painted], None] | None = None,
    max_message: int = MAX_MESSAGE,
    log=print,
) -> FastAPI:
    studio = Studio(open_models(models, backend, threads, size, precision, log), on_frame, max_message)
    app = FastAPI(
        title="rtgan web studio",
        version=__version__,
        description="Label map in, painting out. The page at / paints live over the WebSocket /v1/ws:\n\n"
        + "\n".join("    " + line for line in PROTOCOL.splitlines()),
    )
    app.state.studio = studio
    app.include_router(rest.router)
    app.add_api_websocket_route("/v1/ws", session.endpoint)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
