"""The web studio: paint a label map in the browser, watch the model paint it live.

    python -m rtgan.web                         # the bundled models on http://127.0.0.1:8000/
    python -m rtgan.web --model landscape-spade --model path/to/engine --port 8080

One page (class brushes in the model's colours, fill, eraser, undo/redo, label PNGs in and out, a
style per tab, model switching, webcam or pictures for image-to-image models; OASIS's new noise and
local-noise brush, SEAN's style picture per class or for the whole painting, StyleGAN's latent walk
and truncation slider with the painting alone) beside the live painting, over one WebSocket per tab
(`rtgan.web.protocol`); `POST /v1/paint` paints a label-id PNG (StyleGAN: a seed and truncation)
over plain HTTP (schema at /docs). Engines, not PyTorch: like the demo, a bundled model opens its
shipped engine.
"""


def create_app(*args, **kwargs):
    """`rtgan.web.app.create_app`, imported on use (FastAPI is the `web` extra)."""
    from .app import create_app as create

    return create(*args, **kwargs)


__all__ = ["create_app"]
