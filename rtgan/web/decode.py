"""Bytes from a client -> checked arrays: label-id PNGs, id frames, pictures (JPEG, PNG, ...).

Decoding is OpenCV's (IMREAD_UNCHANGED keeps 16-bit ids and does no colour management, which a
browser canvas would apply); every refusal is an `InputError` naming the problem and the fix.
"""

from __future__ import annotations

import numpy as np

from ..demo.imaging import cv2, resize_cover
from ..demo.segment import fit_labels, labels_from_png
from ..errors import InputError
from .models import ServedModel

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class NotAnImage(InputError):
    """Bytes that are empty, or not an image OpenCV can decode (the HTTP layer answers 400)."""


def check_ids(ids: np.ndarray, model: ServedModel) -> None:
    """Every id (uint8 or uint16, as frames and PNGs carry them) one of the model's classes, else an
    error naming the first stray one and where it is."""
    bad = ~model.allowed[ids]
    if bad.any():
        y, x = divmod(int(np.argmax(bad)), ids.shape[1])
        raise InputError(
            f"label id {int(ids[y, x])} at (x={x}, y={y}) is not one of {model.name}'s classes; "
            f"it takes the ids {', '.join(f'{i} ({model.names[i]})' for i in model.ids)}"
        )


def label_png(data: bytes, model: ServedModel, *, fit: bool = False) -> np.ndarray:
    """A label-map PNG -> (H, W) ids of `model`'s classes, uint8 or uint16.

    8- or 16-bit grayscale, one id per pixel. `fit=False` (the REST endpoint) takes only the model's
    size; `fit=True` (loading into the page's canvas) also reads a colour map drawn in the model's
    class colours and fits any size (centre crop to the aspect ratio, nearest neighbour).
    """
    if not data:
        raise NotAnImage("the body is empty: send a label-map PNG (8- or 16-bit grayscale, one id per pixel)")
    if not data.startswith(PNG_SIGNATURE):
        raise NotAnImage(f"the body is not a PNG (it starts with {data[:8]!r}); send a label-map PNG")
    image = cv2().imdecode(np.frombuffer(data, np.uint8), cv2().IMREAD_UNCHANGED)
    if image is None:
        raise NotAnImage(f"the PNG ({len(data)} bytes) cannot be decoded: truncated or corrupt")
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"the PNG holds {image.dtype} pixels; label ids are 8- or 16-bit")
    if image.ndim == 3:
        if not fit:
            raise InputError(
                f"the PNG has {image.shape[2]} channels (a colour image); {model.name} takes label ids as a "
                "single-channel 8- or 16-bit grayscale PNG, one id per pixel"
            )
        rgb = image[..., 2::-1] if image.shape[2] >= 3 else None
        if rgb is None or image.dtype != np.uint8:
            raise InputError(f"a {image.shape[2]}-channel {image.dtype} PNG is neither ids nor a colour label map")
        image = labels_from_png(np.ascontiguousarray(rgb), model.colours, model.names)
    if fit:  # from uint8 / uint16 pixels or the model's ids: uint16 holds them
        image = fit_labels(image, model.height, model.width).astype(np.uint16)
    elif image.shape != (model.height, model.width):
        h, w = image.shape
        raise InputError(f"the label map is {w}x{h} pixels; {model.name} paints {model.width}x{model.height} (WxH)")
    check_ids(image, model)
    return image.astype(np.uint16 if model.bytes_per_id == 2 else np.uint8)


def picture(data: bytes, model: ServedModel) -> np.ndarray:
    """A JPEG, PNG, ... -> uint8 RGB at the model's size (centre crop to its aspect ratio, then resized)."""
    rgb = any_picture(data)
    return np.ascontiguousarray(resize_cover(rgb, model.height, model.width))


def any_picture(data: bytes) -> np.ndarray:
    """A JPEG, PNG, ... of any size -> uint8 RGB (H, W, 3); grey and alpha images are converted."""
    if not data:
        raise NotAnImage("the image is empty: send a JPEG or PNG")
    image = cv2().imdecode(np.frombuffer(data, np.uint8), cv2().IMREAD_COLOR)  # 8-bit BGR, alpha dropped
    if image is None:
        raise NotAnImage(f"the image ({len(data)} bytes, starting {data[:8]!r}) cannot be decoded; send a JPEG or PNG")
    return image[..., ::-1]
