"""`python tools/resize_upsampling.py --run RUN --mode M`: pix2pixHD's upsampling to resize-convs.

A pix2pixHD run whose stride-2 transposed convs paint a checkerboard (it repeats with the stride,
and the texture loss rewards its energy) keeps everything else it learned: the encoder, the
residual blocks, the output layer and the decoder noise keep their weights, and each upsampling
layer becomes a 2x `M` ('nearest' or 'bilinear') resize and a freshly initialised 3x3 conv.
Instance norm follows every upsampling conv, so a fresh conv's scale does not matter; what it
must relearn is which features to pass on, which takes far fewer steps than the run so far.
Not an exact warm start, unlike `tools/add_noise.py`: the painting changes at once, and the
optimizers start over (new parameters). A resize-conv run may also switch between nearest and
bilinear resizing (same weights; the nearest one's blocks of the coarse grid get smoothed). The
checkpoint and recipe_changes.jsonl are updated; resume with a preset or `--set upsample=M` that has it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rtgan.errors import ConfigError
from rtgan.train.runs import CHECKPOINT, META, STATE, check_run
from rtgan.utils import cli
from rtgan.utils.atomic import atomic_dir

PROG = "python tools/resize_upsampling.py"
MODES = ("nearest", "bilinear")


def resized_state(old, mode: str, seed: int) -> dict:
    """`old` (a pix2pixHD)'s state for its twin with `mode` resize-conv upsampling: every weight
    but transposed convs' is old's; resize-convs replacing those are initialised as the trainer does."""
    import torch  # here, not above: the command checks its arguments before PyTorch loads

    from rtgan.models import build
    from rtgan.models.init import init_weights

    c = old.config
    if c.arch != "pix2pixhd" or mode not in MODES or c.upsample == mode:
        raise ConfigError(
            f"resize upsampling turns a pix2pixHD's upsampling into 'nearest' or 'bilinear' resize-convs; "
            f"got {c.arch} with upsample={getattr(c, 'upsample', None)!r} -> {mode!r}"
        )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        new = init_weights(build(c.replace(upsample=mode)))
    state, trained = new.state_dict(), old.state_dict()
    kept = {k for k, v in trained.items() if k in state and state[k].shape == v.shape}
    state.update({k: trained[k] for k in kept})
    # only the upsampling convs may be new: `model.N.conv.*` where old had `model.N.*`
    stray = [k for k in state if k not in kept and ".conv." not in k]
    if stray:
        raise ConfigError(f"resize upsampling would re-initialise more than the upsampling convs: {stray}")
    return state


def resize_upsampling(run: str | Path, mode: str = "bilinear") -> int:
    """Switch RUN's checkpoint to `mode` resize-conv upsampling in place; returns the checkpoint's step."""
    from safetensors.torch import save_file

    from rtgan.models import build
    from rtgan.models import io as model_io
    from rtgan.train.checkpoint import read_state

    run = Path(run)
    ckpt = run / CHECKPOINT
    meta, tensors = read_state(ckpt)
    old = model_io.load(ckpt / "generator")
    state = resized_state(old, mode, meta["step"])
    new = build(old.config.replace(upsample=mode))
    new.load_state_dict(state)
    if old.config.upsample == "transpose":
        # new parameters: opt_G's parameter list no longer matches, so Adam starts over
        tensors = {k: v for k, v in tensors.items() if not k.startswith("opt_")}
        meta.pop("optimizers", None)
    meta["train_config"]["model"]["upsample"] = mode
    with atomic_dir(ckpt) as tmp:
        model_io.save(new, tmp / "generator")
        save_file(tensors, str(tmp / STATE))
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    with open(run / "recipe_changes.jsonl", "a") as f:
        f.write(json.dumps({"step": meta["step"], "changed": {"upsample": [old.config.upsample, mode]}}) + "\n")
    return meta["step"]


def parser() -> cli.Parser:
    p = cli.Parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a pix2pixHD training run directory (OUT of rtgan.train)")
    p.add_argument("--mode", default="bilinear", help=f"the 2x resize before each conv: {' | '.join(MODES)}")
    return p


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda: _resize(argv), PROG)


def _resize(argv: list[str] | None) -> None:
    from rtgan.utils.names import lookup

    a = parser().parse_args(argv)
    lookup(a.mode, dict.fromkeys(MODES), "upsampling mode")
    check_run(a.run)
    step = resize_upsampling(a.run, a.mode)
    print(f"{a.run}: {a.mode} resize-conv upsampling from step {step}")


if __name__ == "__main__":
    sys.exit(main())
