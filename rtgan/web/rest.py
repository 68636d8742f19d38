"""The REST API: `POST /v1/paint` (label-id PNG in, PNG painting out), `GET /v1/models`, and
`POST /v1/labels` (the page's "load labels": any label PNG -> raw ids fitted to a model).

A model without a label map (StyleGAN) paints from the seed alone: `POST /v1/paint?model=M&seed=S
&truncation=PSI` with an empty body (any body is ignored). Every input besides the label map is drawn
from the seed as in the page (`rtgan.web.models`), so a seed paints the same image here and there.

Errors are JSON `{"detail": MESSAGE}`: 400 not an image / empty, 404 unknown model, 413 too large,
415 wrong content type, 422 a PNG that is not a label map of the model (colour, size, ids).
"""

from __future__ import annotations

import asyncio
import secrets

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response

from ..demo.imaging import cv2
from ..errors import ConfigError, InputError
from .decode import NotAnImage, label_png, picture
from .models import ServedModel, Studio

router = APIRouter(prefix="/v1")
PNG, JPEG = "image/png", "image/jpeg"

_LABEL_PNG = {"schema": {"type": "string", "format": "binary"}}
_PAINT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A label-map model: the label ids as an 8- or 16-bit grayscale PNG of the model's size, one "
        "id per pixel (GET /v1/models lists sizes and ids). An image-to-image model: a JPEG or PNG picture of any "
        "size (centre-cropped to the model's aspect ratio, then resized).",
        "content": {PNG: _LABEL_PNG, JPEG: _LABEL_PNG},
    }
}
_ERRORS = {
    code: {"description": why, "content": {"application/json": {"example": {"detail": "what is wrong, and the fix"}}}}
    for code, why in [
        (400, "empty, or not a decodable image"),
        (404, "unknown model"),
        (413, "body above the size limit"),
        (415, "wrong Content-Type"),
        (422, "not a label map of this model: colour PNG, wrong size, ids outside its classes"),
    ]
}


def _studio(request: Request) -> Studio:
    return request.app.state.studio


def _model(studio: Studio, name: str | None) -> ServedModel:
    try:
        return studio.get(name)
    except ConfigError as e:
        raise HTTPException(404, str(e)) from None


async def _body(request: Request, studio: Studio, types: tuple[str, ...]) -> bytes:
    """The request body, refused before reading it when its type or declared length is wrong."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in types:
        got = f"Content-Type {kind!r}" if kind else "no Content-Type"
        raise HTTPException(415, f"send the body as {' or '.join(types)}; got {got}")
    limit = studio.max_message
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is above the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(e: InputError) -> HTTPException:
    return HTTPException(400 if isinstance(e, NotAnImage) else 422, str(e))


@router.get("/models", summary="The models served, their sizes, classes and colours")
def models(request: Request) -> list[dict]:
    """Each model: `name`, `height`, `width`, `input` ("labels", "image", or "latent": no label map),
    `classes` [{id, name, color}], `background` (the eraser's id), `bytes_per_id`, `style` (takes a style
    seed), `style_image` (takes a style picture over the WebSocket), `region_styles` (a style picture per
    class: SEAN), `arch`, `scalars` [{name, default, low, high}] (StyleGAN's truncation), `noise_regions`
    (M: the local-noise brush's region ids are 0..M-1; null without one), `backend`, `precision`.
    The first is the default."""
    return [m.info() for m in _studio(request).models.values()]


@router.post(
    "/paint",
    summary="Paint a label map (or translate a picture)",
    response_class=Response,
    openapi_extra=_PAINT_BODY,
    responses={200: {"content": {PNG: {}}, "description": "the painting, RGB PNG"}, **_ERRORS},
)
async def paint(
    request: Request,
    model: str | None = Query(None, description="model name (GET /v1/models); default: the first"),
    seed: int | None = Query(
        None,
        ge=0,
        le=2**63 - 1,
        description="style seed of a VAE / style-code model: z = temperature * "
        "np.random.default_rng(seed).standard_normal((1, z_dim)); random when absent (X-Rtgan-Seed tells it)",
    ),
    temperature: float = Query(1.0, ge=0, le=4, description="scales z: 0 paints the mean style, 1 the prior"),
    truncation: float | None = Query(
        None,
        description="StyleGAN's truncation psi, in the model's [low, high] (GET /v1/models: scalars); "
        "default: its declared default",
    ),
) -> Response:
    studio = _studio(request)
    served = _model(studio, model)
    latent = served.input == "latent"
    body = b"" if latent else await _body(request, studio, (PNG, JPEG) if served.takes_image else (PNG,))
    seed = secrets.randbits(32) if seed is None else seed
    controls = served.controls(seed, temperature)
    if truncation is not None:
        try:
            controls.set_scalar("truncation", truncation)
        except InputError as e:
            raise HTTPException(422, str(e)) from None
    z, inputs = controls.z, controls.inputs()

    def work() -> tuple[bytes, float]:
        if served.takes_image:
            painting, ms = served.paint(image=picture(body, served), z=z, inputs=inputs)
        elif latent:
            painting, ms = served.paint(z=z, inputs=inputs)
        else:
            painting, ms = served.paint(label_png(body, served), z=z, inputs=inputs)
        return cv2().imencode(".png", painting[..., ::-1])[1].tobytes(), ms

    try:
        png, engine_ms = await asyncio.to_thread(work)
    except InputError as e:
        raise _refused(e) from None
    headers = {"X-Rtgan-Model": served.name, "X-Rtgan-Engine-Ms": f"{engine_ms:.2f}"}
    if served.style:
        headers["X-Rtgan-Seed"] = str(seed)
    return Response(png, media_type=PNG, headers=headers)


@router.post(
    "/labels",
    summary="Read a label PNG into a model's ids (the page's Load)",
    response_class=Response,
    openapi_extra={"requestBody": {"required": True, "content": {PNG: _LABEL_PNG}}},
    responses={200: {"content": {"application/octet-stream": {}}, "description": "raw ids"}, **_ERRORS},
)
async def labels(request: Request, model: str | None = Query(None, description="model name")) -> Response:
    """An 8/16-bit grayscale id PNG, or a colour one in the model's class colours, of any size (centre
    crop, nearest neighbour) -> the ids, row-major, `bytes_per_id` each (little-endian), with the size
    in `X-Height` / `X-Width`. Ids outside the model's classes are refused, not replaced."""
    studio = _studio(request)
    served = _model(studio, model)
    if served.input != "labels":
        what = "translates pictures" if served.takes_image else "paints without a label map"
        raise HTTPException(422, f"{served.name} {what}; it has no label map to load")
    body = await _body(request, studio, (PNG,))
    try:
        ids = await asyncio.to_thread(label_png, body, served, fit=True)
    except InputError as e:
        raise _refused(e) from None
    headers = {"X-Height": str(ids.shape[0]), "X-Width": str(ids.shape[1]), "X-Bytes-Per-Id": str(ids.itemsize)}
    return Response(np.ascontiguousarray(ids, ids.dtype.newbyteorder("<")).tobytes(), headers=headers,
                    media_type="application/octet-stream")  # fmt: skip
