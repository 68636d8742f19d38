"""Reduced precision for CPU artifacts: bf16 (OpenVINO's inference precision) and int8 (static
post-training quantization, calibrated on label maps of the model's own label space).

- bf16: the fp32 IR with `INFERENCE_PRECISION_HINT=bf16` applied when the engine loads it; the
  manifest records it. Measured here by compiling that way, so export needs a CPU with bf16 units.
- int8 on OpenVINO: NNCF's quantization by the first of `INT8_RECIPES` (fastest first: every op's
  input with min-max or NNCF's default activation ranges, then convolution inputs only) whose
  painting of the validation maps is 2 dB above the floor; where none is, NNCF's accuracy control
  puts layers back into float, worst first, until it is (per-layer measurement, not a fixed list).
- int8 on ONNX Runtime: its QDQ quantizer with its MinMax calibrator, convolutions only (the
  one-hot comparison, the MLP's matmuls and the uint8 conversion stay float).

Every reduced artifact is measured against the fp32 PyTorch reference on held-out maps, not the
calibration or validation ones; below the floor export refuses and leaves nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..engine.backends import openvino_config
from ..errors import ConfigError

FLOORS = {"bf16": 45.0, "int8": 30.0}  # dB vs the fp32 PyTorch reference; `min_psnr` overrides
CALIBRATION_MAPS, VALIDATION_MAPS, HELD_OUT_MAPS = 16, 4, 4
VALIDATION_MARGIN_DB = 2.0  # OpenVINO int8: the validation maps must beat the floor by this much
# OpenVINO int8 recipes, fastest first: export keeps the first whose validation maps hold the target.
# - min-max ranges: NNCF's default estimator clips the tails of what the calibration maps reach, and
#   a map whose activations peak past them is painted darker as a whole (landscape-pix2pixhd: 28.7 dB
#   on one layout against a median of 38);
# - NNCF's default ranges, kept for models whose flat regions need the finer steps (spade-cityscapes:
#   32.5 against 31.8 dB);
# - convolution inputs only: instance norms, residual adds, products and resizes read float. Slower
#   (1.1-1.3x the every-op graph) but the finest: landscape-pix2pixhd 42.4 dB on its worst map.
# BENCHMARKS.md, "int8 activation ranges", has the measurements.
FLOAT_INPUT_OPS = ["MVN", "Add", "Multiply", "Interpolate"]
INT8_RECIPES = {  # name: (op types left in float, min-max ranges)
    "every op input, min-max ranges": ([], True),
    "every op input, NNCF's default ranges": ([], False),
    "convolution inputs, min-max ranges": (FLOAT_INPUT_OPS, True),
}


def openvino_int8_settings(recipe: str, accuracy_control: bool = False) -> dict:
    """NNCF keyword arguments of one of `INT8_RECIPES`, for `nncf.quantize` or, with
    `accuracy_control`, `nncf.quantize_with_accuracy_control` (which names the advanced ones apart)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    ignored, minmax = INT8_RECIPES[recipe]
    kwargs = {"ignored_scope": nncf.IgnoredScope(types=ignored, validate=False)} if ignored else {}
    if minmax:
        advanced = AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
        kwargs["advanced_quantization_parameters" if accuracy_control else "advanced_parameters"] = advanced
    return kwargs


def label_png_maps(directory: str | Path, height: int, width: int, ids: list[int] | None) -> list[np.ndarray]:
    """The label PNGs of `directory` (8/16-bit grayscale ids) as (H, W) int32 maps of the engine's size."""
    import cv2

    files = sorted(p for p in Path(directory).iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ConfigError(f"--calibration {directory}: no .png label maps there")
    maps = []
    for f in files:
        m = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if m is None or m.ndim != 2:
            raise ConfigError(f"--calibration {f}: not a grayscale label-id PNG")
        m = cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST).astype(np.int32)
        if ids is not None and not np.isin(m, ids).all():
            bad = int(np.setdiff1d(np.unique(m), ids)[0])
            raise ConfigError(f"--calibration {f}: label id {bad} is not one of the model's ids")
        maps.append(m)
    return maps


def rgb_images(directory: str | Path, height: int, width: int) -> list[np.ndarray]:
    """The images of `directory` (PNG / JPEG) as (H, W, 3) uint8 RGB of the engine's size."""
    import cv2

    files = sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise ConfigError(f"--calibration {directory}: no .png or .jpg images there")
    images = []
    for f in files:
        im = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if im is None:
            raise ConfigError(f"--calibration {f}: not a readable image")
        images.append(cv2.resize(cv2.cvtColor(im, cv2.COLOR_BGR2RGB), (width, height), interpolation=cv2.INTER_AREA))
    return images


def calibration_sets(manifest: dict, calibration: str | Path | None = None) -> tuple[list, list, list]:
    """(calibration, validation, held-out) lists of engine feeds (batch 1): the user's label PNGs when
    given, else landscape layouts for a model on the landscape classes, else blocky random maps of
    the model's ids. z (when the model takes one) is drawn per map. An image-in model calibrates on
    the user's images, else on rendered landscapes (photo-like, not noise: int8 ranges follow them)."""
    from ..data import landscapes
    from .exporter import sample_feeds

    m, n = manifest, CALIBRATION_MAPS + VALIDATION_MAPS + HELD_OUT_MAPS
    ids = m.get("label_ids")
    names = [i["name"] for i in m["inputs"]]
    image = next((i["name"] for i in m.get("signature", {}).get("inputs", []) if i.get("kind") == "image"), None)
    if image is not None:
        h, w = m["height"], m["width"]
        if calibration is not None:
            own = rgb_images(calibration, h, w)
            pictures = [own[i % len(own)] for i in range(CALIBRATION_MAPS)]
        else:
            pictures = [landscapes.render(s, h, w)[1] for s in range(CALIBRATION_MAPS)]
        pictures += [landscapes.render(s, h, w)[1] for s in range(CALIBRATION_MAPS, n)]  # never the user's
        feeds = []
        for s, picture in enumerate(pictures):
            f = sample_feeds(m, batch=1, seed=10_000 + s)
            f[image] = np.ascontiguousarray(picture[None])
            feeds.append(f)
    elif "labels" not in names:
        feeds = [sample_feeds(m, batch=1, seed=s) for s in range(n)]
    else:
        if calibration is not None:
            maps = label_png_maps(calibration, m["height"], m["width"], ids)
            maps = [maps[i % len(maps)] for i in range(CALIBRATION_MAPS)] + [None] * (n - CALIBRATION_MAPS)
        elif ids is not None and set(ids) <= set(landscapes.NAMES):
            maps = [landscapes.layout(s, m["height"], m["width"]).astype(np.int32) for s in range(n)]
        else:
            maps = [None] * n
        feeds = []
        for s, labels in enumerate(maps):
            f = sample_feeds(m, batch=1, seed=10_000 + s)  # blocky maps, instance ids, z
            if labels is not None:
                f["labels"] = labels[None]
                if "instance" in f:
                    f["instance"] = labels[None].copy()
            feeds.append(f)
    a, b = CALIBRATION_MAPS, CALIBRATION_MAPS + VALIDATION_MAPS
    return feeds[:a], feeds[a:b], feeds[b:]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """export's PSNR, capped at 99 dB (identical images) so NNCF can take differences of it."""
    from .exporter import psnr

    return min(99.0, psnr(a, b))


def fidelity(run: Callable[[dict], np.ndarray], feeds: list[dict], refs: list[np.ndarray]) -> float:
    """The worst PSNR over the maps, capped at 99 dB (identical images)."""
    return round(min(_psnr(run(f), r) for f, r in zip(feeds, refs)), 2)


def openvino_int8(onnx_path: Path, xml_path: Path, sets, refs, floor: float, say) -> dict:
    """Quantize with NNCF: the first of `INT8_RECIPES` whose validation maps hold `floor` plus a margin;
    if none does, the better one with accuracy control, which puts the layers that cost the most back
    into float until they do."""
    import nncf
    import openvino as ov

    calib, val, _ = sets
    val_refs = refs[1]
    core = ov.Core()
    model = core.read_model(str(onnx_path))

    def validate(compiled, data) -> float:
        return min(_psnr(compiled(f)[0], val_refs[i]) for i, f in enumerate(data))

    def score(m) -> float:
        return round(validate(core.compile_model(m, "CPU", openvino_config("int8")), val), 2)

    started = time.perf_counter()
    # the held-out maps come after: aim the validation maps a margin above the floor
    target = floor + VALIDATION_MARGIN_DB
    tried, quantized = {}, None
    for recipe in INT8_RECIPES:
        say(f"int8: {recipe}: calibrating on {len(calib)} maps, validating on {len(val)} (aim {target} dB) ...")
        candidate = nncf.quantize(model, nncf.Dataset(calib), subset_size=len(calib), **openvino_int8_settings(recipe))
        tried[recipe] = score(candidate)
        say(f"int8: {recipe}: {tried[recipe]} dB on the validation maps")
        if tried[recipe] >= target:
            quantized, chosen = candidate, recipe
            break
    accuracy_control = quantized is None
    if accuracy_control:
        chosen = max(tried, key=tried.get)
        say(f"int8: no recipe holds {target} dB; putting layers back into float with accuracy control ({chosen}) ...")
        fp32 = validate(core.compile_model(model, "CPU", openvino_config("fp32")), val)
        quantized = nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(calib),
            nncf.Dataset(val),
            validate,
            max_drop=max(0.0, fp32 - target),  # NNCF bounds the drop from the float model's own score
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(calib),
            **openvino_int8_settings(chosen, accuracy_control=True),
        )
    seconds = round(time.perf_counter() - started, 1)
    ov.save_model(quantized, str(xml_path), compress_to_fp16=False)
    quantizers = sum(1 for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize")
    return {"recipe": chosen, "validation_psnr_db": tried, "accuracy_control": accuracy_control,
            "calibration_seconds": seconds, "fake_quantize_ops": quantizers}  # fmt: skip


class _Reader:
    """ONNX Runtime's CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict]):
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):  # not needed by MinMax; the API has it
        pass


def onnxruntime_int8(onnx_path: Path, out_path: Path, sets, say) -> dict:
    """Static QDQ quantization of the convolutions (weights per channel, activations per tensor)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = sets[0]
    started = time.perf_counter()
    say(f"int8: calibrating on {len(calib)} maps ...")
    pre = out_path.with_suffix(".pre.onnx")
    quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(out_path),
        _Reader(calib),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    pre.unlink()
    return {"calibration_seconds": round(time.perf_counter() - started, 1)}
