"""`Engine.load(path)` -> `engine.run(labels)`: label ids in, uint8 RGB image out. NumPy only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError, RtganError
from ..formats import AUTO_ORDER, get_format  # the formats table (torch-free)
from ..signature import Signature
from .backends import BACKENDS
from .contract import ONNX_FILE
from .manifest import ArtifactError, installed_version, read_manifest
from .precision import PRECISIONS
from .precision import choose as choose_precision
from .tensorrt import BackendUnavailable

# what "auto" tries, best first, among the backends an artifact can serve (the formats table's order)
_AUTO_ORDER = AUTO_ORDER


class Engine:
    def __init__(self, directory: Path, manifest: dict, backend, *, seed: int | None = None):
        self.directory, self.manifest, self.backend = directory, manifest, backend
        self.height, self.width = manifest["height"], manifest["width"]
        self.num_classes = manifest.get("num_classes")
        # the declared inputs (artifacts of label-map models written before signatures have none)
        self.signature = Signature.from_dict(manifest["signature"]) if manifest.get("signature") else None
        # models trained on a subset of an id space (COCO-Stuff ids for the bundled ones) list their ids
        self.label_ids = manifest.get("label_ids")
        self._lut = None
        if self.label_ids is not None:
            self._lut = np.zeros(max(self.label_ids) + 1, bool)
            self._lut[self.label_ids] = True
        self.input_names = [i["name"] for i in manifest["inputs"]]
        self.rng = np.random.default_rng(seed)
        self.precision, self.precision_reason = manifest.get("precision", "fp32"), "the artifact's precision"
        self._style = None  # the style-encoder session, opened on first use

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        backend: str = "auto",
        device: str | None = None,
        threads: int | None = None,
        seed: int | None = None,
        precision: str | None = None,
        kernels: bool | None = None,
    ) -> "Engine":
        """Open an artifact directory written by `rtgan.export`; `backend='auto'` picks the best one that runs here.

        `precision`: None runs the artifact's own; "auto" the fastest that holds its fidelity floor on
        this CPU (`rtgan.engine.precision`); "fp32" / "bf16" / "int8" ask for one (an error says why
        it cannot be had). `engine.precision` and `engine.precision_reason` tell what was chosen.
        `kernels`: None runs rtgan's fused kernels where the backend has them (OpenVINO: an artifact's
        plugin graph with the CPU ops of `rtgan.engine.openvino_ext`, where they build here and did not
        measure slower; torch: the Triton kernels on CUDA; TensorRT: plugins built into the plan);
        True requires them, False runs the standard-op graph. `engine.kernels` / `kernels_reason` tell.
        """
        directory = Path(path)
        manifest = read_manifest(directory)
        available = available_backends(manifest)
        if precision not in PRECISIONS:
            choose_precision(manifest, "", precision)  # the typed error, before any backend loads

        def open_(name: str) -> "Engine":
            _check_versions(directory, manifest, name)
            run_at, why = choose_precision(manifest, name, precision)
            impl = _open(name, directory, dict(manifest, precision=run_at), device, threads, kernels)
            engine = cls(directory, manifest, impl, seed=seed)
            engine.precision, engine.precision_reason = run_at, why
            return engine

        if backend != "auto":
            backend = get_format(backend).backend
            if backend not in available:
                raise ArtifactError(
                    f"{directory} was exported for {manifest['backend']!r}; it can run on "
                    f"{', '.join(available)}, not {backend!r}"
                )
            return open_(backend)
        errors = []
        for name in [b for b in _AUTO_ORDER if b in available]:
            try:
                return open_(name)
            except (BackendUnavailable, ArtifactError) as e:
                errors.append(f"{name}: {e}")
        raise BackendUnavailable(f"no backend can run {directory} here:\n  " + "\n  ".join(errors))

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def kernels(self) -> bool:
        """Whether the fused CPU kernels run (see `kernels_reason`)."""
        return getattr(self.backend, "kernels", False)

    @property
    def kernels_reason(self) -> str:
        return getattr(self.backend, "kernels_reason", f"the {self.backend_name} backend runs the standard graph")

    def input_spec(self) -> list[dict]:
        return self.manifest["inputs"]

    def output_spec(self) -> dict:
        return self.manifest["output"]

    def encode_style(self, style, labels=None, instance=None) -> np.ndarray:
        """A style image through the exported style encoder.

        SPADE's VAE: uint8 RGB image(s) (H, W, 3) or (B, H, W, 3), any size -> z (B, z_dim), the
        encoder's mean. SEAN (`style_input='codes'` engines): image(s) at the engine's size and their
        label ids (H, W) or (B, H, W) (required; `instance` defaults to the labels, as in `run`) ->
        per-region codes (B, semantic_nc, style_length), (semantic_nc, style_length) for one image:
        the Zencoder's mean over each region, to pass as `run(labels, style=codes)`.
        """
        info = self.manifest.get("style_encoder")
        if info is None:
            raise InputError("this engine has no style encoder (not a VAE model, or exported without latest_net_E.pth)")
        names = info.get("inputs", [info.get("input")])
        style = _array(style, "style")
        single = style.ndim == 3
        style = style[None] if single else style
        if style.dtype != np.uint8 or style.ndim != 4 or style.shape[-1] != 3:
            raise InputError(f"style must be uint8 RGB (H, W, 3) or (B, H, W, 3), got {style.dtype} {style.shape}")
        if 0 in style.shape:
            raise InputError(f"style must hold at least one image of at least 1x1 pixels, got shape {style.shape}")
        feeds = {names[0]: np.ascontiguousarray(style)}
        if "labels" in names:  # a per-region encoder: the regions are the label map's
            if labels is None:
                raise InputError("labels are required: the style encoder pools the image over each label region")
            if style.shape[1:3] != (self.height, self.width):
                raise InputError(
                    f"style must be {self.height}x{self.width} (this engine's size, the label map's), "
                    f"got {style.shape[1]}x{style.shape[2]}"
                )
            single = single and _array(labels, "labels").ndim == 2
            feeds["labels"] = self._ids(labels, "labels")
            self._add_instance(feeds, instance, "instance" in names)
            if feeds["labels"].shape[0] != style.shape[0]:
                raise InputError(f"style has batch {style.shape[0]}, the labels {feeds['labels'].shape[0]}")
        elif labels is not None or instance is not None:
            raise InputError("this style encoder takes the image alone (a VAE encoder): give no labels")
        if self._style is None:
            from .backends import _require

            ort = _require("onnxruntime", "cpu")
            self._style = ort.InferenceSession(str(self.directory / info["file"]), providers=["CPUExecutionProvider"])
        out = self._style.run(None, feeds)[0]
        return out[0] if single and "labels" in names else out

    def run(self, labels=None, instance=None, z=None, style=None, **inputs) -> np.ndarray:
        """Paint label ids (H, W) or (B, H, W) -> uint8 RGB (H, W, 3) or (B, H, W, 3).

        A generator without a label map takes its declared inputs by name instead (`z=`, `label=`,
        `code=`, ...: see `input_spec()`); one given as a single sample gives one image, an absent
        latent, class or code is sampled.

        A model that takes instance edges uses `labels` as the instance map when `instance` is
        None (each connected class region one instance). A VAE model takes its style from `z`,
        from a `style` image (through the exported encoder), or samples z ~ N(0, I). A label-map
        model's other declared inputs (SEAN's `style` and `noise`, OASIS's `noise_regions` and
        `z_regions`) are taken by name, one batch with the labels, and sampled as the generators' inputs
        when absent. A `scalar` input (StyleGAN's `truncation`) takes one number for the whole batch or
        a (B,) array, its declared default when absent; a `regions` map is all 0 when absent.
        """
        if "labels" not in self.input_names:
            if labels is not None or instance is not None or style is not None:
                raise InputError(f"this engine takes no label map; its inputs are {', '.join(self.input_names)}")
            return self._run_declared({**inputs, **({"z": z} if z is not None else {})})
        extra = self._extra_inputs()
        if style is not None and "style" in extra:  # a declared input of that name, not the VAE's style image
            inputs, style = {**inputs, "style": style}, None
        unknown = sorted(set(inputs) - set(extra))
        if unknown:
            raise InputError(f"unknown input(s) {', '.join(unknown)}; this engine takes {self._takes()}")
        if labels is None:
            raise InputError(f"labels are required: this engine takes {self._takes()}")
        if style is not None:
            if z is not None:
                raise InputError("give z or a style image, not both")
            z = self.encode_style(style)
        labels = _array(labels, "labels")
        single = labels.ndim == 2
        feeds = {"labels": self._ids(labels, "labels")}
        b = feeds["labels"].shape[0]
        self._add_instance(feeds, instance, "instance" in self.input_names)
        if "z" in self.input_names:
            zdim = self.manifest["z_dim"]
            z = self.rng.standard_normal((b, zdim)) if z is None else _array(z, "z")
            z = z[None] if z.ndim == 1 else z
            if z.shape != (b, zdim) or not np.issubdtype(z.dtype, np.floating) or not np.isfinite(z).all():
                raise InputError(f"z must be finite floats of shape ({b}, {zdim}), got {z.shape} {z.dtype}")
            feeds["z"] = np.ascontiguousarray(z, dtype=np.float32)
        elif z is not None:
            raise InputError("z was given but this model has no latent input")
        for name, spec in extra.items():
            if name not in inputs:
                feeds[name] = self._sample(spec, b)
                continue
            feeds[name], one = _declared(spec, inputs[name], (self.height, self.width))
            if spec.kind == "scalar" and one:  # one value for the whole batch
                feeds[name] = np.repeat(feeds[name], b)
            if feeds[name].shape[0] != b:
                raise InputError(f"{name} has batch {feeds[name].shape[0]}, the labels {b}")
        image = self._infer(feeds)
        return image[0] if single else image

    def _add_instance(self, feeds: dict, instance, takes: bool) -> None:
        """feeds["instance"]: the given instance ids, or the labels (each class region one instance)."""
        if not takes:
            if instance is not None:
                raise InputError("an instance map was given but this model takes none")
            return
        feeds["instance"] = (
            self._ids(instance, "instance", check_range=False) if instance is not None else feeds["labels"]
        )
        if feeds["instance"].shape != feeds["labels"].shape:
            raise InputError(f"instance shape {feeds['instance'].shape} does not match labels {feeds['labels'].shape}")

    def _extra_inputs(self) -> dict:
        """A label-map graph's declared inputs besides labels, instance and z, by name."""
        inputs = self.signature.inputs if self.signature is not None else ()
        return {i.name: i for i in inputs if i.name not in ("labels", "instance", "z")}

    def _infer(self, feeds: dict) -> np.ndarray:
        """The backend's image, refused unless it is what the manifest promises (uint8 (B, H, W, C))."""
        b = next(iter(feeds.values())).shape[0]
        try:
            image = self.backend.infer(feeds)
        except RtganError:
            raise
        except Exception as e:  # the graph is not the one the manifest describes
            raise ArtifactError(
                f"{self.directory}: the {self.backend_name} graph refused inputs that match the manifest "
                f"({type(e).__name__}: {str(e)[:300]}); the manifest does not describe its model file: re-export"
            ) from None
        channels = self.signature.channels if self.signature is not None else 3
        want = (b, self.height, self.width, channels)
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != want:
            got = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
            raise ArtifactError(f"{self.directory}: the graph painted {got}, not uint8 {want}: re-export")
        return image

    def _takes(self) -> str:
        return ", ".join(self.input_names)

    def _run_declared(self, given: dict) -> np.ndarray:
        """A generator's declared latent / class / code inputs -> images (its signature's kinds)."""
        sig = self.signature
        unknown = sorted(set(given) - {i.name for i in sig.inputs})
        if unknown:
            raise InputError(f"unknown input(s) {', '.join(unknown)}; this engine takes {self._takes()}")
        size = (self.height, self.width)
        arrays = {name: _declared(sig.input(name), value, size) for name, value in given.items()}
        # a scalar given as one number applies to every sample: it sets neither the batch nor its form
        shared = {name for name, (_, one) in arrays.items() if one and sig.input(name).kind == "scalar"}
        batches = {name: a.shape[0] for name, (a, _) in arrays.items() if name not in shared}
        if len(set(batches.values())) > 1:
            raise InputError(f"inputs disagree on the batch size: {batches}")
        b = next(iter(batches.values()), 1)
        single = all(one for name, (_, one) in arrays.items() if name not in shared)
        if b < 1:
            raise InputError("an empty batch: give at least one sample")
        feeds = {name: np.repeat(a, b) if name in shared else a for name, (a, _) in arrays.items()}
        for spec in sig.inputs:
            if spec.name not in feeds:
                feeds[spec.name] = self._sample(spec, b)
        image = self._infer(feeds)
        return image[0] if single else image

    def _sample(self, spec, b: int) -> np.ndarray:
        if spec.kind == "latent":
            return self.rng.standard_normal((b, spec.size)).astype(np.float32)
        if spec.kind == "codes":
            return self.rng.uniform(-1, 1, (b, spec.size)).astype(np.float32)
        if spec.kind == "styles":
            return self.rng.uniform(-1, 1, (b, spec.classes, spec.size)).astype(np.float32)
        if spec.kind == "class":
            return self.rng.integers(0, spec.classes, b).astype(np.int32)
        if spec.kind == "latents":
            return self.rng.standard_normal((b, spec.classes, spec.size)).astype(np.float32)
        if spec.kind == "scalar":
            return np.full(b, spec.default, np.float32)
        if spec.kind == "regions":
            return np.zeros((b, self.height, self.width), np.int32)
        raise InputError(f"input {spec.name!r} ({spec.kind}) is required")

    def _ids(self, ids, what: str, check_range: bool = True) -> np.ndarray:
        ids = _array(ids, what)
        if not np.issubdtype(ids.dtype, np.integer):
            raise InputError(f"{what} must hold integer ids, got dtype {ids.dtype}")
        if ids.ndim in (3, 4) and ids.shape[-1] in (3, 4) and ids.shape[-3:-1] == (self.height, self.width):
            raise InputError(
                f"{what} of shape {ids.shape} look like an RGB image: the engine takes label ids (H, W) or "
                "(B, H, W); read a colour label map with rtgan.demo.segment.labels_from_png, or save id PNGs"
            )
        ids = ids[None] if ids.ndim == 2 else ids
        if ids.ndim == 3 and ids.shape[0] == 0:
            raise InputError(f"{what}: an empty batch (0, H, W); give at least one map")
        if ids.ndim != 3 or ids.shape[1:] != (self.height, self.width):
            raise InputError(
                f"{what} must be (H, W) or (B, H, W) with H, W = {self.height}, {self.width} "
                f"(this engine's fixed size), got {np.shape(ids)}"
            )
        if not 1 <= ids.shape[0] <= self.manifest["max_batch"] and self.backend_name.startswith("tensorrt"):
            raise InputError(f"batch {ids.shape[0]} exceeds this plan's max_batch {self.manifest['max_batch']}")
        if check_range and self._lut is not None and ids.size:
            if ids.min() < 0 or ids.max() >= len(self._lut) or not self._lut[ids].all():
                bad = np.setdiff1d(np.unique(ids), self.label_ids)[0]
                raise InputError(f"label id {bad} is not one of this model's classes; it takes {self._classes()}")
        elif check_range and ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise InputError(f"label id {bad} is out of range: this model takes {self._classes()}")
        if (
            check_range is False
            and ids.size
            and (ids.min() < np.iinfo(np.int32).min or ids.max() > np.iinfo(np.int32).max)
        ):
            raise InputError(f"{what} ids must fit in int32")
        return np.ascontiguousarray(ids, dtype=np.int32)

    def _classes(self) -> str:
        """The ids this engine takes, with their class names where the artifact records them."""
        names = self.manifest.get("class_names") or {}
        ids = self.label_ids if self.label_ids is not None else range(self.num_classes)
        if not names:
            return f"ids {ids[0]}..{ids[-1]}" if self.label_ids is None else f"the ids {list(ids)}"
        return "the ids " + ", ".join(f"{i} {names.get(str(i), '?')}" for i in ids)


def _array(value, what: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise InputError(f"{what} is not a rectangular array: {e}") from None


def _declared(spec, value, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """One declared input, checked: (batched array, whether it was given as a single sample).
    `size`: the engine's (height, width), which an image input must have (the engine does not resize:
    a silent resize would change what the model sees; the demo fits frames itself)."""
    a = _array(value, spec.name)
    if spec.kind == "image":
        if a.dtype != np.uint8:
            raise InputError(f"{spec.name} must be a uint8 RGB image, got dtype {a.dtype}")
        if a.ndim not in (3, 4) or a.shape[-3:] != (*size, 3):
            raise InputError(
                f"{spec.name} must be (H, W, 3) or (B, H, W, 3) uint8 RGB with H, W = {size[0]}, {size[1]} "
                f"(this engine's fixed size), got shape {a.shape}"
            )
        return np.ascontiguousarray(a.reshape(-1, *size, 3)), a.ndim == 3
    if spec.kind == "class":
        if not np.issubdtype(a.dtype, np.integer) or a.ndim > 1:
            raise InputError(
                f"{spec.name} must be an integer class id or a (B,) array of them, got {a.dtype} {a.shape}"
            )
        if a.size and (a.min() < 0 or a.max() >= spec.classes):
            raise InputError(f"{spec.name} ids must be in 0..{spec.classes - 1}, got {a.min()}..{a.max()}")
        return np.ascontiguousarray(a.reshape(-1), np.int32), a.ndim == 0
    if spec.kind == "scalar":
        return _scalar(spec, a), a.ndim == 0
    if spec.kind == "regions":
        return _regions(spec, a, size)
    if spec.kind in ("latent", "codes", "styles", "latents"):
        per = (spec.size,) if spec.kind in ("latent", "codes") else (spec.classes, spec.size)
        if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
            raise InputError(f"{spec.name} must hold floats, got dtype {a.dtype}")
        if a.ndim not in (len(per), len(per) + 1) or a.shape[-len(per) :] != per:
            one = f"({spec.size},)" if len(per) == 1 else str(per)
            raise InputError(f"{spec.name} must be {one} or (B, {', '.join(map(str, per))}), got shape {a.shape}")
        if not np.isfinite(a).all():
            raise InputError(f"{spec.name} holds NaN or infinity")
        return np.ascontiguousarray(a.reshape(-1, *per), np.float32), a.ndim == len(per)
    raise ConfigError(f"input {spec.name!r} of kind {spec.kind!r} is not supported by Engine.run yet")


def _scalar(spec, a: np.ndarray) -> np.ndarray:
    """A scalar input: one number or a (B,) array of them, finite and inside the declared bounds."""
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) or a.ndim > 1:
        raise InputError(f"{spec.name} must be a number or a (B,) array of numbers, got {a.dtype} {a.shape}")
    if a.ndim == 1 and a.shape[0] == 0:
        raise InputError(f"{spec.name}: an empty batch (0,); give at least one value")
    if not np.isfinite(a).all():
        raise InputError(f"{spec.name} holds NaN or infinity")
    lo = -np.inf if spec.low is None else spec.low
    hi = np.inf if spec.high is None else spec.high
    if a.min() < lo or a.max() > hi:
        bad = a.min() if a.min() < lo else a.max()
        raise InputError(f"{spec.name} must be in [{lo:g}, {hi:g}], got {float(bad):g}")
    return np.ascontiguousarray(a.reshape(-1), np.float32)


def _regions(spec, a: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """A region-id map (H, W) or (B, H, W) at the engine's size, integer ids in [0, classes)."""
    if not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{spec.name} must hold integer region ids, got dtype {a.dtype}")
    if a.ndim not in (2, 3) or a.shape[-2:] != size or (a.ndim == 3 and a.shape[0] == 0):
        raise InputError(
            f"{spec.name} must be (H, W) or (B, H, W) region ids with H, W = {size[0]}, {size[1]} "
            f"(this engine's fixed size), got shape {a.shape}"
        )
    if a.size and (a.min() < 0 or a.max() >= spec.classes):
        bad = a.min() if a.min() < 0 else a.max()
        raise InputError(f"{spec.name}: region id {bad} is out of range; ids are 0..{spec.classes - 1}")
    return np.ascontiguousarray(a.reshape(-1, *size), np.int32), a.ndim == 2


def _open(name: str, directory: Path, manifest: dict, device, threads, kernels: bool | None = None):
    """The backend `name` on an artifact; a runtime that cannot read the artifact's files is an ArtifactError."""
    try:
        return BACKENDS[name](directory, manifest, device, threads, kernels)
    except RtganError:
        raise
    except Exception as e:  # onnxruntime's InvalidProtobuf, OpenVINO's RuntimeError, a truncated plan, ...
        raise ArtifactError(
            f"{directory}: {name} cannot open this artifact ({type(e).__name__}: {str(e)[:300]}); re-export"
        ) from None


def available_backends(manifest: dict) -> list[str]:
    """Backends that can serve an artifact: its own, plus the ONNX runtimes on the ONNX it holds."""
    own = manifest["backend"]
    names = [own]
    # an OpenVINO artifact holds only its IR; the others keep the fp32 ONNX that both CPU runtimes read
    if manifest.get("precision") == "fp32" and ONNX_FILE in manifest.get("files", {}):
        names += [b for b in ("openvino", "onnxruntime") if b != own]
    return names


def _check_versions(directory: Path, manifest: dict, backend: str) -> None:
    """Refuse artifacts that the installed library cannot run (plans are tied to one TensorRT version)."""
    built = manifest.get("libraries", {}).get(backend)
    have = installed_version(backend) if backend != "torch" else None
    if backend.startswith("tensorrt") and built and have and built != have:
        raise ArtifactError(f"{directory}: plan built with {backend} {built}, installed {have}; re-export")
    if backend == "openvino" and built and have and int(have.split(".")[0]) < int(built.split(".")[0]):
        raise ArtifactError(
            f"{directory}: IR written by OpenVINO {built}, installed {have} is older; upgrade or re-export"
        )
