"""`rtgan.serve.Client`: paint through a Triton server (NVIDIA's tritonserver or `python -m rtgan.serve run`).

    from rtgan.serve import Client
    client = Client("localhost:8001", model="landscape-asapnet")          # gRPC; protocol="http" on 8000
    image = client.paint(labels)                                          # (H, W) ids -> (H, W, 3) uint8
    images = client.paint(batch_of_labels, z=latents)                     # (B, H, W) -> (B, H, W, 3)

The client learns the model's inputs from the server (its metadata and config), checks a request
against them before sending it (typed rtgan errors name the problem), samples z ~ N(0, I) when a model
takes one and none is given, and splits a batch larger than the model's max_batch_size. NumPy and
tritonclient only: no PyTorch, numpy 2 is fine.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import ConfigError, InputError
from . import dtypes
from .errors import ServerError, ServerUnavailable

PROTOCOLS = ("grpc", "http")


class Client:
    def __init__(
        self,
        url: str = "localhost:8001",
        model: str = "landscape-asapnet",
        protocol: str = "grpc",
        *,
        version: str = "",
        timeout: float = 60.0,
        seed: int | None = None,
    ):
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        try:
            if protocol == "grpc":
                import tritonclient.grpc as triton
            else:
                import tritonclient.http as triton
        except ImportError:
            raise ConfigError("rtgan.serve.Client needs tritonclient: pip install 'rtgan[serve]'") from None
        self.url, self.model, self.protocol, self.version, self.timeout = url, model, protocol, version, timeout
        self._triton = triton
        kwargs = {"network_timeout": timeout, "connection_timeout": timeout} if protocol == "http" else {}
        self._client = triton.InferenceServerClient(url, **kwargs)
        self.rng = np.random.default_rng(seed)
        self._spec: dict | None = None

    # -- server state ------------------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether the server answers, is ready, and has this model loaded and ready."""
        try:
            return bool(
                self._client.is_server_live()
                and self._client.is_server_ready()
                and self._client.is_model_ready(self.model, self.version)
            )
        except Exception:  # refused connection, timeout, server exiting: not ready
            return False

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.25) -> None:
        """Block until `ready()`; ServerUnavailable after `timeout` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"{self._where()} is not ready after {timeout:.0f} s")
            time.sleep(interval)

    @property
    def inputs(self) -> dict[str, tuple[str, list[int]]]:
        """{input name: (NumPy dtype name, per-item dims with -1 for any size)} as the server declares them."""
        return {n: (s["dtype"], s["dims"]) for n, s in self._model_spec()["inputs"].items()}

    @property
    def max_batch_size(self) -> int:
        return self._model_spec()["max_batch_size"]

    # -- painting ----------------------------------------------------------------------------------

    def paint(self, labels=None, z=None, **inputs) -> np.ndarray:
        """Label ids (H, W) or (B, H, W) -> uint8 image (H, W, 3) or (B, H, W, 3); other models take their
        inputs by name (`source=` for an image-to-image model, `photo=` for a photo ensemble)."""
        spec = self._model_spec()
        given = dict(inputs)
        if labels is not None:
            given["labels"] = labels
        if z is not None:
            given["z"] = z
        declared = spec["inputs"]
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise InputError(f"model {self.model!r} takes {', '.join(declared)}; not {', '.join(unknown)}")
        arrays, single = {}, {}
        for name, value in given.items():
            arrays[name], single[name] = self._checked(name, value, declared[name])
        batches = {n: a.shape[0] for n, a in arrays.items()}
        if len(set(batches.values())) > 1:
            raise InputError(f"inputs disagree on the batch size: {batches}")
        b = next(iter(batches.values()), 1)
        for name, d in declared.items():
            if name in arrays:
                continue
            if d["dtype"] == "float32" and len(d["dims"]) == 1 and d["dims"][0] > 0:  # a latent: sample it
                arrays[name] = self.rng.standard_normal((b, d["dims"][0])).astype(np.float32)
            else:
                raise InputError(f"model {self.model!r} needs input {name!r} ({d['dtype']} {d['dims']})")
        if b < 1:
            raise InputError("an empty batch: give at least one sample")
        step = spec["max_batch_size"] or b
        parts = [self._infer({n: a[i : i + step] for n, a in arrays.items()}) for i in range(0, b, step)]
        image = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return image[0] if single and all(single.values()) else image

    def _checked(self, name: str, value, spec: dict) -> tuple[np.ndarray, bool]:
        """(batched array of the declared dtype, whether it was given as one sample)."""
        try:
            a = np.asarray(value)
        except ValueError as e:
            raise InputError(f"{name} is not a rectangular array: {e}") from None
        dims, dtype = spec["dims"], spec["dtype"]
        if a.ndim not in (len(dims), len(dims) + 1):
            raise InputError(f"{name} must be {_shape(dims)} or (B, {_shape(dims)[1:-1]}), got shape {a.shape}")
        one = a.ndim == len(dims)
        a = a[None] if one else a
        if any(d != -1 and d != s for d, s in zip(dims, a.shape[1:])):
            raise InputError(f"{name} must be {_shape(dims)} per item (this model's fixed size), got {a.shape[1:]}")
        if dtype == "uint8":
            if a.dtype != np.uint8:
                raise InputError(f"{name} must be a uint8 image, got dtype {a.dtype}")
        elif dtype.startswith("int"):
            if not np.issubdtype(a.dtype, np.integer):
                raise InputError(f"{name} must hold integer ids, got dtype {a.dtype}")
            info = np.iinfo(dtype)
            if a.size and (a.min() < info.min or a.max() > info.max):
                raise InputError(f"{name} ids must fit in {dtype}")
            if name == "labels" and spec.get("ids") is not None and a.size:
                bad = np.setdiff1d(np.unique(a), spec["ids"])
                if bad.size:
                    raise InputError(f"label id {bad[0]} is not one of model {self.model!r}'s classes "
                                     f"({', '.join(map(str, spec['ids']))})")  # fmt: skip
        elif dtype.startswith("float"):
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                raise InputError(f"{name} must hold floats, got dtype {a.dtype}")
            if not np.isfinite(a).all():
                raise InputError(f"{name} holds NaN or infinity")
        return np.ascontiguousarray(a, dtype=dtype), one

    def _infer(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        spec = self._model_spec()
        feeds = []
        for name, a in arrays.items():
            t = self._triton.InferInput(name, list(a.shape), dtypes.protocol_type(a.dtype))
            t.set_data_from_numpy(a)
            feeds.append(t)
        outputs = [self._triton.InferRequestedOutput(spec["output"])]
        kwargs = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        try:
            result = self._client.infer(self.model, feeds, model_version=self.version, outputs=outputs, **kwargs)
        except Exception as e:
            raise self._error(e, "painting") from None
        image = result.as_numpy(spec["output"])
        b = next(iter(arrays.values())).shape[0]
        if image is None or image.shape[:1] != (b,) or image.dtype != np.uint8:
            shown = None if image is None else f"{image.dtype} {image.shape}"
            raise ServerError(f"{self._where()} answered {shown} for a batch of {b}: not uint8 images")
        return image

    # -- the model's declaration, read once from the server ------------------------------------------

    def _model_spec(self) -> dict:
        if self._spec is None:
            try:
                meta = self._client.get_model_metadata(self.model, self.version, **self._json())
                config = self._client.get_model_config(self.model, self.version, **self._json())
            except Exception as e:
                raise self._error(e, "reading the model's metadata") from None
            config = config.get("config", config)  # gRPC wraps it in {"config": ...}
            batched = int(config.get("max_batch_size", 0)) > 0
            params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
            inputs = {}
            for i in meta["inputs"]:
                dims = [int(d) for d in i["shape"]]
                dtype = dtypes.from_protocol(i["datatype"])
                if dtype is None:
                    raise ServerError(f"model {self.model!r} takes {i['name']} as {i['datatype']}, which rtgan "
                                      "does not send")  # fmt: skip
                # the metadata shape includes the batch dimension (-1) of a batching model
                inputs[i["name"]] = {"dtype": dtype, "dims": dims[1:] if batched or dims[:1] == [-1] else dims}
            if "rtgan_label_ids" in params and "labels" in inputs:
                inputs["labels"]["ids"] = _ids(params["rtgan_label_ids"])
            names = [o["name"] for o in meta["outputs"]]
            self._spec = {"inputs": inputs, "output": "image" if "image" in names else names[0],
                          "max_batch_size": int(config.get("max_batch_size", 0))}  # fmt: skip
        return self._spec

    def _json(self) -> dict:
        return {"as_json": True} if self.protocol == "grpc" else {}

    def _where(self) -> str:
        return f"model {self.model!r} at {self.url} ({self.protocol})"

    def _error(self, e: Exception, doing: str) -> Exception:
        """tritonclient's exception -> a typed rtgan error naming the cause."""
        text = str(e.message() if hasattr(e, "message") and callable(e.message) else e) or type(e).__name__
        status = str(e.status() if hasattr(e, "status") and callable(e.status) else "")
        low = text.lower()
        raised = re.search(r"rtgan\.\w+(?:\.\w+)*\.(\w+Error): ([^\n]*)", text)  # Engine.run's, via PyTriton
        if raised:
            kind = InputError if raised[1] == "InputError" else ServerError
            return kind(f"{self._where()}: {raised[2]}")
        if "unknown model" in low or "not found" in low:
            return ServerUnavailable(f"{self._where()}: the server has no such model ({text})")
        if "unavailable" in status.lower() or "unavailable" in low or "not ready" in low or "exiting" in low or \
                isinstance(e, (ConnectionError, OSError)) or "connect" in low:  # fmt: skip
            return ServerUnavailable(f"{doing}: no ready server for {self._where()}: {text}")
        if "deadline" in low or "timed out" in low or "timeout" in low:
            return ServerUnavailable(f"{doing}: {self._where()} did not answer within {self.timeout:.0f} s")
        return ServerError(f"{doing}: {self._where()}: {text}")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_) -> None:
        self.close()


def _shape(dims: list[int]) -> str:
    names = {0: "H", 1: "W"}
    return "(" + ", ".join(str(d) if d != -1 else names.get(i, "N") for i, d in enumerate(dims)) + ")"


def _ids(text: str) -> list[int]:
    """'156,105' or '0-14' -> ids."""
    if "-" in text and "," not in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",") if v]
