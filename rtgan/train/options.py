"""`python -m rtgan.train`'s command line: parsed and checked without PyTorch, so that a misspelled
argument is one line within a second rather than after PyTorch has loaded (seconds) or the data
has rendered (minutes); and the reverse, `command_line`, the command that trains a given run
(model cards print it).
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from .. import catalog, weights
from ..data.layouts import LAYOUTS, SPLITS, check_root
from ..errors import ConfigError
from ..presets import PRESETS, get_preset
from ..utils import cli
from ..utils.extras import require
from ..utils.names import lookup
from .recipes import RECIPES
from .runs import CHECKPOINT, META

PROG = "python -m rtgan.train"
DESCRIPTION = """Train a generator; a run resumes from OUT/checkpoint when it exists.

    python -m rtgan.train --recipe landscape-asapnet --out runs/asapnet     # a shipped model's recipe
    python -m rtgan.train --recipe landscape-asapnet --init-from landscape-asapnet --out runs/ft  # fine-tune it
    python -m rtgan.train --arch spade --set label_nc=182 contain_dontcare_label=true --data coco --root /data/coco
    torchrun --nproc_per_node 2 -m rtgan.train ...     # DDP (NCCL on GPUs, gloo on CPU)

Unpaired image-to-image translation has its own commands (sketches <-> photos, never paired):
    python -m rtgan.train.cyclegan --out runs/cyclegan      # two G, two D, LSGAN, cycle + identity, image pool
    python -m rtgan.train.munit --out runs/munit            # MUNIT: reconstruction, latent and adversarial losses

Ctrl-C saves a checkpoint and exits 130; SIGTERM saves and ends the process by SIGTERM (143).
Options are also accepted with underscores (--batch_size)."""

# the trainable families of rtgan.models, named without importing PyTorch: label-map generators,
# then image-to-image ones (which train on --data sketches)
ARCHS = ("spade", "asapnet", "pix2pixhd", "pix2pix", "cyclegan")
IMAGE_ARCHS = ("pix2pix", "cyclegan")
# label-map families rtgan.models paints exactly but rtgan.train has no recipe for: OASIS trains against
# a segmentation discriminator, SEAN its style encoder end to end
INFERENCE_ONLY = ("oasis", "sean")
RENDERED = ("landscapes", "sketches")  # data the project draws itself: no --root
DATA = (*RENDERED, *LAYOUTS)
GAN_MODES = ("hinge", "lsgan", "vanilla")  # rtgan.train.losses.GAN_MODES
DEVICE_TYPES = ("auto", "cpu", "cuda", "mps", "xpu")
# TrainConfig fields that say how a run goes, not what it learns: not in a reproducing command
OPERATIONAL = ("out", "device", "workers", "save_every", "sample_every", "log_every", "progress", "init_from")


def _number(kind: type, minimum: float, strict: bool):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum}, got {text}")
        return value

    return parse


POSITIVE_INT, COUNT = _number(int, 0, True), _number(int, 0, False)
POSITIVE, WEIGHT = _number(float, 0, True), _number(float, 0, False)


def parser() -> cli.Parser:
    p = cli.Parser(PROG, DESCRIPTION)
    m = p.add_argument_group("model")
    m.add_argument(
        "--recipe",
        metavar="MODEL",
        help=f"a shipped model's preset and the training flags it was trained with ({', '.join(RECIPES)}); "
        "flags given explicitly still win",
    )
    m.add_argument(
        "--preset",
        metavar="NAME",
        help="model options of a preset, e.g. landscape-asapnet (random weights, default training flags)",
    )
    m.add_argument("--arch", help=f"{' | '.join(ARCHS)} (or take it from --preset)")
    cli.add_set(m, help="model options by their official names, over the preset's (e.g. --set ngf=32)")
    m.add_argument(
        "--init-from",
        metavar="MODEL",
        help=f"start a new run from a saved generator: a bundled model ({', '.join(weights.BUNDLED)}) or a model "
        "directory; its weights and steps carry on, the discriminator and optimizers start fresh",
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        default="landscapes",
        help=f"{' | '.join(DATA)}; folder reads ROOT/labels and ROOT/images; sketches: pencil drawings of "
        "landscapes -> their photos, for image-to-image models",
    )
    d.add_argument("--root", metavar="DIR", help="the dataset's folder (every --data but landscapes)")
    d.add_argument("--split", default="train", help=" | ".join(SPLITS))
    cli.add_size(d, "256x256", "training size HxW (landscapes render at it, datasets are resized to it)")
    d.add_argument("--count", type=POSITIVE_INT, default=2000, help="landscapes: number of distinct scenes")
    d.add_argument(
        "--variants", type=POSITIVE_INT, default=1, help="sketches: drawing styles per scene (default: %(default)s)"
    )
    d.add_argument("--data-seed", type=COUNT, default=0, help="landscapes: scene i is seed DATA_SEED + i (default: 0)")
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, help="run directory: checkpoint/, samples/, losses.jsonl, tensorboard/")
    r.add_argument("--steps", type=POSITIVE_INT, default=10000, help="total steps (a resumed run continues to it)")
    r.add_argument("--batch-size", type=POSITIVE_INT, default=4, help="samples per step, per process")
    r.add_argument("--seed", type=COUNT, default=0, help="initial weights and each step's noise (default: %(default)s)")
    r.add_argument("--save-every", type=POSITIVE_INT, default=500, help="steps between checkpoints")
    r.add_argument("--sample-every", type=POSITIVE_INT, default=500, help="steps between sample grids")
    r.add_argument("--log-every", type=POSITIVE_INT, default=10, help="steps between losses.jsonl lines")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (logs, batch jobs)")
    o = p.add_argument_group("losses and optimizer")
    o.add_argument("--lr", type=POSITIVE, default=0.0002, help="learning rate (TTUR: G at lr/2, D at lr*2)")
    o.add_argument("--no-TTUR", action="store_true", help="same lr for G and D, Adam betas (0.5, 0.999)")
    o.add_argument("--gan-mode", default="hinge", help=f"adversarial loss: {' | '.join(GAN_MODES)} (default: hinge)")
    o.add_argument("--lambda-feat", type=WEIGHT, default=10.0, help="discriminator feature matching")
    o.add_argument("--lambda-vgg", type=WEIGHT, default=10.0, help="VGG19 perceptual loss (with --vgg-weights)")
    o.add_argument("--lambda-kld", type=WEIGHT, default=0.05, help="KL divergence of SPADE's style encoder (use_vae)")
    o.add_argument("--lambda-l1", type=WEIGHT, default=0.0, help="L1 to the real image, as pix2pix (default: 0)")
    o.add_argument(
        "--lambda-texture", type=WEIGHT, default=0.0, help="per-class texture statistics, no download (default: 0)"
    )
    o.add_argument("--vgg-weights", metavar="FILE", help="torchvision vgg19 weights (.pth/.safetensors)")
    g = p.add_argument_group("discriminator")
    g.add_argument("--ndf", type=POSITIVE_INT, default=64, help="width of its first layer")
    g.add_argument("--n-layers-D", type=POSITIVE_INT, default=4, help="layers per scale")
    g.add_argument("--num-D", type=POSITIVE_INT, default=2, help="scales")
    h = p.add_argument_group("machine")
    h.add_argument("--device", default="auto", help="auto (cuda when available, else cpu) | cpu | cuda | cuda:N | mps")
    h.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    h.add_argument("--threads", type=POSITIVE_INT, help="CPU threads per process (default: PyTorch's)")
    h.add_argument("--workers", type=COUNT, default=0, help="data loader processes (default: %(default)s)")
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, with a --recipe's flags as defaults (so that flags given still win)."""
    p = parser()
    args = p.parse_args(argv)
    if args.recipe is not None:
        flags = lookup(args.recipe, RECIPES, "recipe")
        if args.preset not in (None, args.recipe):
            raise ConfigError(f"--recipe {args.recipe} sets --preset {args.recipe}; drop --preset {args.preset}")
        p.set_defaults(**flags, preset=args.recipe)
        args = p.parse_args(argv)
    return args


def check(args: argparse.Namespace) -> dict[str, Any]:
    """Every argument checked without PyTorch -> the run's config as `TrainConfig.from_dict` takes it."""
    arch, model = _model(args)
    size = cli.size_of(args)
    data = lookup(args.data, {d: d for d in DATA}, "dataset")
    lookup(args.split, dict.fromkeys(SPLITS), "split")
    lookup(args.gan_mode, dict.fromkeys(GAN_MODES), "GAN mode")
    if (arch in IMAGE_ARCHS) != (data == "sketches"):  # the trainer says so too, but only after PyTorch loads
        what = "image-to-image" if arch in IMAGE_ARCHS else "label-map"
        fits = "sketches" if arch in IMAGE_ARCHS else " | ".join(d for d in DATA if d != "sketches")
        raise ConfigError(f"--arch {arch} is a {what} generator: it trains on --data {fits}, not {data}")
    if arch in IMAGE_ARCHS and args.lambda_texture:
        raise ConfigError("--lambda-texture is per class of a label map: image-to-image runs take 0")
    if data in RENDERED:
        if args.root is not None:  # most likely a forgotten --data folder: it would train on rendered scenes
            raise ConfigError(f"--root {args.root} is for dataset folders (--data folder...); {data} are rendered")
    else:
        check_root(data, args.root, args.split)
    _device(args.device)
    if args.amp and args.device.split(":")[0] not in ("auto", "cuda"):
        raise ConfigError(f"--amp (mixed precision) needs a CUDA device, not --device {args.device}")
    if args.vgg_weights is not None and not Path(args.vgg_weights).is_file():
        raise ConfigError(f"--vgg-weights {args.vgg_weights}: no such file")
    for module, package, purpose in (
        ("torch", None, "training"),
        ("safetensors", None, "training checkpoints"),
        ("PIL", "pillow", "training's sample grids"),
    ):
        require(module, "train", purpose, package=package)
    if not args.no_progress:
        require("rich", "train", "the progress bar (or pass --no-progress)")
    return dict(
        arch=arch,
        model=model,
        out=args.out,
        data=data,
        root=args.root,
        split=args.split,
        size=list(size),
        count=args.count,
        data_seed=args.data_seed,
        variants=args.variants,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        no_TTUR=args.no_TTUR,
        gan_mode=args.gan_mode,
        lambda_feat=args.lambda_feat,
        lambda_vgg=args.lambda_vgg,
        lambda_kld=args.lambda_kld,
        lambda_l1=args.lambda_l1,
        lambda_texture=args.lambda_texture,
        vgg_weights=args.vgg_weights,
        init_from=_init_from(args.init_from, arch) if args.init_from else None,
        discriminator=dict(ndf=args.ndf, n_layers_D=args.n_layers_D, num_D=args.num_D),
        seed=args.seed,
        amp=args.amp,
        device=args.device,  # "auto" is resolved once PyTorch is imported
        workers=args.workers,
        save_every=args.save_every,
        sample_every=args.sample_every,
        log_every=args.log_every,
        progress=not args.no_progress,
    )


def _model(args) -> tuple[str, dict[str, Any]]:
    arch, model = args.arch, {}
    if arch is not None:
        lookup(arch, dict.fromkeys(ARCHS), "architecture")
    if args.preset:
        preset = get_preset(args.preset)
        if arch and arch != preset.arch:
            raise ConfigError(f"--arch {arch} disagrees with --preset {args.preset} ({preset.arch})")
        arch, model = preset.arch, dict(preset.options)
    if not arch:
        raise ConfigError("give --recipe, --preset or --arch")
    model.update(cli.parse_sets(args.set))
    if "label_ids" in model:
        model["label_ids"] = list(model["label_ids"])  # JSON-friendly in the run's config
    return arch, model


def _device(text: str) -> None:
    kind, sep, index = text.partition(":")
    lookup(kind, dict.fromkeys(DEVICE_TYPES), "device")
    if sep and (kind not in ("cuda", "xpu") or not index.isdigit()):
        raise ConfigError(f"--device {text}: a device is auto, cpu, cuda, cuda:N or mps")


def _init_from(name: str, arch: str) -> str:
    """A bundled model's name as it is (model cards print it), a directory as given; checked."""
    ref = catalog.resolve(name)
    if ref.kind != "model":
        raise ConfigError(
            f"--init-from {name} is an {ref.kind} artifact; it takes a bundled model ({', '.join(weights.BUNDLED)}) "
            "or an rtgan model directory"
        )
    if ref.arch() != arch:
        raise ConfigError(f"--init-from {name} is a generator of architecture {ref.arch()}; this run trains {arch}")
    return name


def notices(args: argparse.Namespace, config: dict[str, Any]) -> list[str]:
    """What to say before training starts: the traps of a preset named like a shipped model."""
    name = args.preset
    if name not in weights.BUNDLED or (Path(config["out"]) / CHECKPOINT / META).is_file():
        return []
    lines = []
    if config["init_from"] is None:
        lines.append(f"starting from random weights; to fine-tune the shipped model add --init-from {name}")
    if args.recipe is None and name in RECIPES:
        differ = {k: v for k, v in RECIPES[name].items() if getattr(args, k) != v}
        if differ:
            was = ", ".join(f"{k}={_text(v)} (now {_text(getattr(args, k))})" for k, v in differ.items())
            lines.append(f"the shipped {name} was trained with {was}: --recipe {name} sets them")
    return lines


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def command_line(config: dict[str, Any], preset: str | None = None, **given: Any) -> str:
    """The command that trains a run of `config` (a TrainConfig dict): --preset (or --arch) and --set
    for its model, then every flag whose value is not the default, but for OPERATIONAL ones. `given`
    sets flags by their option's dest, always written (steps=..., out=..., init_from=..., threads=...)."""
    p = parser()
    defaults = vars(p.parse_args(["--out", "OUT"]))
    model = json.loads(json.dumps(config["model"]))
    base = json.loads(json.dumps(dict(get_preset(preset).options))) if preset in PRESETS else None
    if base is not None and set(base) <= set(model):
        words = ["--preset", preset]
    else:  # --set cannot take a preset's option away: name every option instead
        words, base = ["--arch", config["arch"]], {}
    values = {k: v for k, v in config.items() if k not in ("arch", "model", "discriminator", "size", "progress")}
    values |= {k: config["discriminator"][k] for k in ("ndf", "n_layers_D", "num_D")}
    values |= {"size": "x".join(map(str, config["size"])), "no_progress": not config.get("progress", True)}
    for action in p._actions:
        if not action.option_strings or action.dest not in {**values, **given}:
            continue
        value = given.get(action.dest, values.get(action.dest))
        if action.dest not in given and (action.dest in OPERATIONAL + ("no_progress",) or value is None):
            continue
        default = defaults["size_default"] if action.dest == "size" else defaults[action.dest]
        if action.dest not in given and value == default:
            continue
        if action.nargs == 0:
            words += [action.option_strings[0]] if value else []
        else:
            words += [action.option_strings[0], _text(value)]
    sets = [f"{k}={_text(v)}" for k, v in model.items() if base.get(k, object()) != v]
    words += ["--set", *sets] if sets else []
    return f"{PROG} {shlex.join(words)}"
