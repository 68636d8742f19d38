"""Turn a training run into a shipped model: weights (fp16 when harmless), sample grid, model card.

    python -m rtgan.train.bundle --run runs/landscape-asapnet --out rtgan/weights/landscape-asapnet \
        --quality benchmarks/results/quality/quality.json
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np

from ..data.landscapes import PALETTE, render
from ..errors import ConfigError
from ..scenes import colorize
from ..utils import cli
from ..utils.atomic import atomic_write_bytes
from .options import command_line
from .runs import check_run

SAMPLE_SEEDS = range(30_000_000, 30_000_004)  # held out from training
FP16_MIN_PSNR = 45.0  # dB of fp16-stored weights vs fp32 on the sample scenes


def image_in(model) -> bool:
    return model.signature().inputs[0].kind == "image"


def sample_grid(model, size: int = 256) -> np.ndarray:
    """Rows: label map | procedural render (the 'real' image) | generated (| a second style for VAE
    models); a sketch model's rows: sketch | render | generated."""
    from ..data.sketches import sketch
    from .quality import paint

    rows = []
    for s in SAMPLE_SEEDS:
        labels, real = render(s, size, size)
        if image_in(model):
            rows.append(
                np.concatenate([sketch(labels, real, s), real, paint(model, labels[None], s, real[None])[0]], 1)
            )
            continue
        cols = [colorize(labels, PALETTE), real, paint(model, labels[None], s)[0]]
        if getattr(model.config, "use_vae", False):
            cols.append(paint(model, labels[None], s + 1)[0])
        rows.append(np.concatenate(cols, 1))
    return np.concatenate(rows, 0)


def final_losses(run: Path, last: int = 50) -> dict[str, float]:
    lines = [json.loads(s) for s in (run / "losses.jsonl").read_text().splitlines() if s.strip()]
    tail = lines[-last:]
    keys = [k for k in tail[-1] if k not in ("step", "elapsed_s")]
    return {k: float(np.mean([r[k] for r in tail if k in r])) for k in keys}


def loss_plot(run: Path, changes: list[dict], window: int = 20) -> bytes | None:
    """PNG of each loss against step (running mean over `window` logged steps), recipe changes marked;
    None without matplotlib (the `bench` extra)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(s) for s in (run / "losses.jsonl").read_text().splitlines() if s.strip()]
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("step", "elapsed_s")))
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        steps, vals = np.array(pts).T
        k = min(window, len(vals))
        ax.plot(steps[k - 1 :], np.convolve(vals, np.ones(k) / k, "valid"), lw=1.2)
        for c in changes:
            ax.axvline(c["step"], color="#c44", lw=0.8, ls="--")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _value(v) -> str:
    return str(v) if isinstance(v, (bool, str)) else f"{v:g}"


def _change_row(name: str, change: dict) -> str:
    """A card row for one recipe_changes.jsonl entry, saying how to repeat it."""
    changed = change["changed"]
    what = ", ".join(f"{k} {_value(a)} → {_value(b)}" for k, (a, b) in changed.items())
    if "upsample" in changed:
        before, after = changed["upsample"]
        cmd = f"python tools/resize_upsampling.py --run runs/{name} --mode {after}"
        how = f"`{cmd}` at that step: " + ("fresh upsampling convs" if before == "transpose" else "same weights")
    elif not {"noise_nc", "noise_decoder", "noise_decoder_init_std"} & set(changed):  # loss weights
        how = "the command reproduces the final recipe; run the steps before it without the change"
    else:  # a model change made by tools/add_noise.py
        cmd = f"python tools/add_noise.py --run runs/{name}"
        if {"noise_decoder", "noise_decoder_init_std"} & set(changed):
            cmd += " --decoder"
        if "noise_decoder_init_std" in changed:
            cmd += f" --init-std {changed['noise_decoder_init_std'][1]:g}"
            how = f"`{cmd}` at that step: decoder-noise weights moved off zero"
        else:
            how = f"`{cmd}` at that step: zero-weight noise inputs"
    return f"| recipe change at step {change['step']} | {what} ({how}) |"


def recipe_changes(run: Path) -> list[dict]:
    path = run / "recipe_changes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def quality_lines(name: str, quality: dict | None) -> list[str]:
    """The model card's "## Quality" section (with its trailing blank line), or nothing without scores."""
    if not quality:
        return []
    q, real = quality.get(name), quality.get("real renders")
    lines = [
        "## Quality (no download needed)",
        "",
        "A small segmenter trained on real renders segments generated images of 60 held-out scenes "
        "(the SPADE papers' protocol on our data); `python -m rtgan.train.quality`. The first row is the "
        "segmenter on the real renders, the ceiling.",
        "",
        "| images | mIoU | pixel accuracy | mean per-class colour distance |",
        "|---|---|---|---|",
    ]
    for label, r in (("real renders", real), (name, q)):
        if r:
            lines.append(f"| {label} | {r['miou']:.3f} | {r['pixel_accuracy']:.3f} | {r['mean_colour_distance']:.1f} |")
    if q and real and q["miou"] > real["miou"]:
        lines += [
            "",
            "Above the real renders' mIoU: read it as at the ceiling, not above it. The segmenter finds this "
            "model's classes more typical than the renders themselves (a generator paints each class's "
            "average look; the texture loss matches per-class statistics); the colour distance and the "
            "samples show the gap that remains.",
        ]
    if q:
        lines += ["", "| class | IoU | colour distance |", "|---|---|---|"]
        for c, v in q["iou"].items():
            dist = q["colour_distance"][c]
            lines.append(f"| {c} | {'-' if v is None else f'{v:.3f}'} | {'-' if dist is None else f'{dist:.1f}'} |")
    return lines + [""]


def refresh_quality(model_dir: Path, quality: dict) -> Path:
    """Replace the quality section of a bundled model's card (new scores, e.g. a new segmenter)."""
    card = model_dir / "MODEL_CARD.md"
    text = card.read_text()
    head, sep, rest = text.partition("## Quality")
    if not sep:
        raise ConfigError(f"{card} has no '## Quality' section to refresh")
    tail = rest[rest.index("\n## ") + 1 :] if "\n## " in rest else ""
    atomic_write_bytes(card, (head + "\n".join(quality_lines(model_dir.name, quality)) + "\n" + tail).encode())
    return card


def _initialized_row(init: dict) -> str:
    noise = init.get("noise_nc")
    widened = (
        f"; noise_nc {noise[0]} → {noise[1]} with zero-weight noise inputs" if noise and noise[0] != noise[1] else ""
    )
    return (
        f"| initialized from | `{init['model']}` at step {init['step']} (weights sha256 {str(init.get('sha256'))[:12]}…"
        f"{widened}; fresh discriminator and optimizers: `--init-from`) |"
    )


def _card(
    name: str,
    model,
    meta: dict,
    run: Path,
    changes: list[dict],
    precision: str,
    fp16_db: float,
    quality: dict | None,
    plotted: bool,
) -> str:
    from .trainer import TrainConfig

    cfg, t = model.config, meta["train_config"]
    params = sum(p.numel() for p in model.parameters())
    losses = final_losses(run)
    d = t["discriminator"]
    # every flag the run's config differs from the defaults in, so the command is its recipe
    init = meta.get("initialized_from")
    given = {"out": f"runs/{name}", "steps": meta["step"], "threads": 1}
    given |= {"init_from": init["model"]} if init else {}
    cmd = command_line(TrainConfig.from_dict(t).to_dict(), name, **given)
    sketches = image_in(model)
    size = f"{t['size'][0]}x{t['size'][1]}"
    what = (
        f"{cfg.arch} generator ({cfg.netG}, ngf {cfg.ngf}) trained by rtgan to paint a pencil sketch of a landscape "
        f"(a drawing held up to the camera) as a landscape, {size}"
        if sketches
        else f"{cfg.arch} generator trained by rtgan on its procedural landscapes (15 COCO-Stuff classes, "
        f"GauGAN colours), {size}"
    )
    if t.get("no_TTUR"):
        adam = f"Adam lr {t['lr']} for both networks, betas (0.5, 0.999)"
    else:
        adam = f"TTUR: G lr {t['lr'] / 2}, D lr {t['lr'] * 2}, Adam betas (0, 0.9)"
    gan = {"hinge": "hinge GAN", "lsgan": "LSGAN", "vanilla": "BCE GAN"}[t.get("gan_mode", "hinge")]
    data = (
        f"`rtgan.data.sketches`: {t['count']} scenes (seeds {t['data_seed']}..{t['data_seed'] + t['count'] - 1}), "
        f"each drawn in {t.get('variants', 1)} pencil styles (line weight, graphite, paper, light, hand tremor, "
        "hatching), the sketch in, the render as the target"
        if sketches
        else f"`rtgan.data.landscapes`, {t['count']} scenes (seeds {t['data_seed']}..{t['data_seed'] + t['count'] - 1})"
    )
    inputs = (
        f"| input | a uint8 RGB picture of a drawing, {size} (`Engine.run(source=...)`; the demo passes camera "
        "frames) |"
        if sketches
        else f"| classes | {', '.join(f'{i}' for i in cfg.label_ids)} (COCO-Stuff ids) |"
    )
    lines = [
        f"# {name}",
        "",
        f"{what}. Load with `rtgan.models.load(rtgan.weights.path({name!r}))`.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{cfg.arch}` (preset `{name}`) |",
        f"| parameters | {params / 1e6:.2f} M |",
        f"| stored as | {precision} safetensors ({fp16_db:.1f} dB PSNR of fp16-stored vs fp32 weights) |",
        inputs,
        f"| steps | {meta['step']} at batch {t['batch_size']} ({meta['step'] * t['batch_size']} images) |",
        f"| wall time | {meta.get('elapsed_s', 0) / 3600:.2f} h of training on a 2-core CPU machine, "
        "shared with the other bundled runs |",
        f"| final losses (mean of the last 50 logged steps) | {', '.join(f'{k} {v:.3f}' for k, v in losses.items())} |",
        *[_change_row(name, c) for c in changes],
        *(
            [
                f"| optimizer restarts | at step {', '.join(map(str, meta['optimizer_restarts']))} (carried between "
                "machines without Adam state, `python tools/carry.py`; an unbroken run keeps it) |"
            ]
            if meta.get("optimizer_restarts")
            else []
        ),
        *([_initialized_row(meta["initialized_from"])] if meta.get("initialized_from") else []),
        "",
        "## Config",
        "",
        "```json",
        json.dumps(cfg.to_dict(), indent=1),
        "```",
        "",
        "## Data",
        "",
        f"{data}, rendered on first use and cached. Losses: {gan}, "
        f"discriminator feature matching (x{t['lambda_feat']:g})"
        + (f", KLD (x{t['lambda_kld']:g})" if getattr(cfg, "use_vae", False) else "")
        + (f", L1 to the real image (x{t['lambda_l1']:g})" if t.get("lambda_l1") else "")
        + (
            f", per-class random-filter texture statistics (x{t['lambda_texture']:g}, `rtgan.train.texture`)"
            if t.get("lambda_texture")
            else ""
        )
        + (
            f", VGG19 perceptual (x{t['lambda_vgg']:g})"
            if t.get("vgg_weights")
            else "; no VGG loss (no VGG19 weights can be downloaded here)"
        )
        + f". {adam}. Discriminator: {d['num_D']} scale{'s' if d['num_D'] > 1 else ''}, ndf {d['ndf']}, "
        f"{d['n_layers_D']} layers.",
        "",
        "## Reproduce",
        "",
        (
            "Training resumes from `runs/NAME/checkpoint` when interrupted, so it can run in pieces; to go on "
            f"from the shipped weights on another machine, add `--init-from {name}` (fresh discriminator and "
            "optimizers):"
            if sketches
            else "Training resumes from `runs/NAME/checkpoint` when interrupted, so it can run in pieces; to move "
            f"it between machines, the run is kept in `training/{name}` (`python tools/carry.py`), and "
            f"`cp -r training/{name} runs/` before the command continues it:"
        ),
        "",
        "```bash",
        cmd,
        f"python -m rtgan.train.bundle --run runs/{name} --out rtgan/weights/{name} "
        "--quality benchmarks/results/quality/quality.json",
        "```",
        "",
    ]
    lines += quality_lines(name, quality)
    lines += [
        "## Samples",
        "",
        (
            "Held-out scenes: sketch | procedural render | generated"
            if sketches
            else "Held-out scenes: label map | procedural render | generated"
        )
        + (" | generated with another random style" if getattr(cfg, "use_vae", False) else "")
        + ".",
        "",
        "![samples](samples.png)",
        "",
    ]
    if plotted:
        lines += [
            "## Losses",
            "",
            "Each term as it enters the objective (weighted), running mean over 20 logged steps"
            + ("; dashed lines: recipe changes" if changes else "")
            + ".",
            "",
            "![losses](losses.png)",
            "",
        ]
    return "\n".join(lines)


def fp16_psnr(model) -> float:
    """PSNR (dB) on held-out scenes of `model` with its weights rounded to fp16, against as it is."""
    import copy

    import torch

    from ..export import psnr
    from .quality import paint

    with torch.random.fork_rng():
        torch.manual_seed(0)
        scenes = [render(s, 256, 256) for s in SAMPLE_SEEDS[:3]]
        labels, photos = np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])
        ref = paint(model, labels, photos=photos)
        half = copy.deepcopy(model)
        half.load_state_dict(
            {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        )
        return psnr(paint(half, labels, photos=photos), ref)


def bundle(run: Path, out: Path, quality: dict | None = None) -> Path:
    # PyTorch here and in the helpers, not above: the command checks its arguments before it loads
    import torch

    from ..models import load, save
    from .report import png_bytes

    ckpt = run / "checkpoint"
    meta = json.loads((ckpt / "train_state.json").read_text())
    model = load(ckpt / "generator")
    name = out.name
    # a run packed on another machine (benchmarks/gpu/train.py) may hold fp16 weights only, with the
    # check made there on the fp32 ones
    packed = ckpt / "packed.json"
    fp16_psnr_db = json.loads(packed.read_text())["fp16_psnr"] if packed.is_file() else fp16_psnr(model)
    precision = "fp16" if fp16_psnr_db >= FP16_MIN_PSNR else "fp32"
    run_config = run / "train_config.json"
    size = json.loads(run_config.read_text()).get("size") if run_config.is_file() else None
    # the size it was trained at: what the demo and the commands paint it at by default
    t = meta["train_config"]
    # the run's config too: what `--recipe NAME` is checked against where the run itself is not carried
    extra = {
        "trained": {
            "steps": meta["step"],
            "elapsed_s": meta.get("elapsed_s"),
            "data": t.get("data", "landscapes"),
            "size": size,
            "train_config": t,
        }
    }
    save(model, out, dtype=torch.float16 if precision == "fp16" else None, extra=extra)
    torch.manual_seed(0)
    atomic_write_bytes(out / "samples.png", png_bytes(sample_grid(load(out))))
    changes = recipe_changes(run)
    plot = loss_plot(run, changes)
    if plot is not None:
        atomic_write_bytes(out / "losses.png", plot)
    card = _card(name, model, meta, run, changes, precision, fp16_psnr_db, quality, plot is not None)
    atomic_write_bytes(out / "MODEL_CARD.md", card.encode())
    return out


PROG = "python -m rtgan.train.bundle"


def parser() -> cli.Parser:
    p = cli.Parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--run", help="training run directory (with checkpoint/ and losses.jsonl)")
    p.add_argument("--out", required=True, help="model directory to write, e.g. rtgan/weights/landscape-asapnet")
    p.add_argument("--quality", metavar="FILE", help="quality.json from `python -m rtgan.train.quality`")
    p.add_argument("--refresh-quality", action="store_true", help="only rewrite OUT's card quality section")
    return p


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda: _bundle(argv), PROG)


def _bundle(argv: list[str] | None) -> None:
    a = parser().parse_args(argv)
    if a.quality is not None and not Path(a.quality).is_file():  # a card without its scores, silently
        raise ConfigError(f"--quality {a.quality}: no such file (write it with `python -m rtgan.train.quality`)")
    quality = json.loads(Path(a.quality).read_text()) if a.quality else None
    if a.refresh_quality:
        if quality is None:
            raise ConfigError("--refresh-quality needs --quality FILE")
        if not (Path(a.out) / "MODEL_CARD.md").is_file():
            raise ConfigError(f"--out {a.out}: no MODEL_CARD.md to refresh")
        print(refresh_quality(Path(a.out), quality))
    elif a.run is None:
        raise ConfigError("give --run (or --refresh-quality)")
    else:
        check_run(a.run)
        if not (Path(a.run) / "losses.jsonl").is_file():
            raise ConfigError(f"--run {a.run}: no losses.jsonl (the model card reports its final losses)")
        print(bundle(Path(a.run), Path(a.out), quality))


if __name__ == "__main__":
    sys.exit(main())
