"""fp32 | bf16 | int8 paintings of each bundled label-map model on OpenVINO, side by side, with their PSNR
against the fp32 PyTorch reference: what reduced precision looks like.

    python benchmarks/precision_pictures.py --out benchmarks/results/precision

Needs the `torch` and `quantize` extras (the int8 engines are exported here) and a CPU with bf16 units.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rtgan import Engine, weights
from rtgan.data import landscapes
from rtgan.errors import ConfigError
from rtgan.export import export, psnr, reference_image
from rtgan.models import load
from rtgan.scenes import colorize


def _caption(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/precision")
    ap.add_argument("--seed", type=int, default=31, help="the landscape layout painted")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, report = [], {}
    for name in weights.BUNDLED:
        model = load(weights.path(name))
        shipped = weights.path(name) / "engine"
        manifest = json.loads((shipped / "manifest.json").read_text())
        if not any(i["kind"] == "labels" for i in manifest["inputs"]):
            continue  # the photo-in sketch model: no label maps to paint
        feeds = {"labels": landscapes.layout(args.seed, manifest["height"], manifest["width"])[None].astype(np.int32)}
        if manifest.get("z_dim"):
            feeds["z"] = np.random.default_rng(args.seed).standard_normal((1, manifest["z_dim"])).astype(np.float32)
        ref = reference_image(model, feeds)
        engines = {"fp32": Engine.load(shipped, "openvino"), "bf16": Engine.load(shipped, "openvino", precision="bf16")}
        try:  # the bundled models' int8 target: 40 dB on held-out maps (export's default floor is 30)
            h, w = manifest["height"], manifest["width"]
            int8 = export(model, height=h, width=w, backend="openvino", precision="int8", min_psnr=40,
                          out=Path(tempfile.mkdtemp()) / "int8", progress=False)  # fmt: skip
            engines["int8"] = Engine.load(int8, "openvino")
        except ConfigError as e:
            engines["int8"] = str(e).split(":")[0]  # "int8 paints N dB ... below the floor": refused
        cells = [_caption(colorize(feeds["labels"][0], landscapes.PALETTE), name)]
        report[name] = {}
        for label, engine in engines.items():
            if isinstance(engine, str):
                report[name][label] = engine
                cells.append(_caption(np.full_like(ref[0], 64), f"{label} refused by export"))
                continue
            image = engine.run(**feeds)[0]
            db = psnr(image[None], ref)
            report[name][label] = round(db, 1)
            cells.append(_caption(image, f"{label} {db:.1f} dB" if np.isfinite(db) else f"{label} exact"))
        rows.append(np.concatenate(cells, 1))
        print(name, report[name], flush=True)
    grid = np.concatenate(rows, 0)
    cv2.imwrite(str(out / "precision.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    (out / "precision.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out / 'precision.png'}")


if __name__ == "__main__":
    main()
