"""`python tools/add_noise.py --run RUN --noise-nc 4`: give a run noise inputs, as a warm start.

Instead of starting over, the noise inputs get zero weights (and zero Adam moments), so the widened
generator paints exactly what the run's did and training then learns to use the noise: in SPADE
and pix2pixHD every conv that reads the semantic map gains input channels; in ASAPNet the low-res
stream's last conv gains the outputs that become the MLPs' noise weights. The run's checkpoint and
recipe_changes.jsonl are updated; resume with the same command and `--set noise_nc=N` (or a
preset that has it). `--decoder` turns on pix2pixHD's decoder noise (`noise_decoder`) the same way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rtgan.errors import ConfigError
from rtgan.train.runs import CHECKPOINT, META, STATE, check_run
from rtgan.utils import cli
from rtgan.utils.atomic import atomic_dir

PROG = "python tools/add_noise.py"


def add_noise_channels(run: str | Path, noise_nc: int, decoder: bool = False, init_std: float = 0.0) -> int:
    """Widen RUN's checkpoint to `noise_nc` noise channels in place (with `decoder`, turn on
    pix2pixHD's decoder noise, adding the channels too if it has none); returns the checkpoint's step.

    `init_std` > 0 adds N(0, init_std) to the decoder-noise weights (also on a run that has them):
    zero is a saddle point for them, since the variance a noise input adds grows with the square of
    its weight, so the texture losses pull a zero weight nowhere and it learns only slowly.
    """
    import torch  # here, not above: the command checks its arguments before PyTorch loads
    from safetensors.torch import save_file

    from rtgan.models import build
    from rtgan.models import io as model_io
    from rtgan.train.checkpoint import read_state
    from rtgan.train.widen import widen, widened_state

    run = Path(run)
    ckpt = run / CHECKPOINT
    meta, tensors = read_state(ckpt)
    old = model_io.load(ckpt / "generator")
    c = old.config
    if decoder:
        if c.arch != "pix2pixhd" or (c.noise_decoder and not init_std):
            raise ConfigError(f"{run}: decoder noise is for a pix2pixHD run without it ({c.arch})")
        changes = {} if c.noise_decoder else {"noise_decoder": [False, True]}
        changes |= {} if c.noise_nc else {"noise_nc": [0, noise_nc]}
        changes |= {"noise_decoder_init_std": [0, init_std]} if init_std else {}
    elif c.noise_nc != 0 or noise_nc <= 0:
        raise ConfigError(f"{run} has noise_nc={c.noise_nc}; this adds noise to a run without any")
    else:
        changes = {"noise_nc": [0, noise_nc]}
    model_changes = {k: v[1] for k, v in changes.items() if k in ("noise_nc", "noise_decoder")}
    new = build(c.replace(**model_changes))
    new.load_state_dict(widened_state(old, new.config))
    if init_std:
        g = torch.Generator().manual_seed(meta["step"])
        for conv in new.noise_decoder:
            conv.weight.data += torch.randn(conv.weight.shape, generator=g) * init_std
    if "noise_decoder" in changes:
        # new parameters: opt_G's parameter list no longer matches, so Adam starts over, as after a
        # carry (with betas (0, 0.9) it remembers about ten steps)
        tensors = {k: v for k, v in tensors.items() if not k.startswith("opt_")}
        meta.pop("optimizers", None)
    else:
        # opt_G's state is indexed by position in generator.parameters(), as the trainer built it
        names = [k for k, _ in new.named_parameters()]
        for idx, p in enumerate(new.parameters()):
            for moment in ("exp_avg", "exp_avg_sq"):
                key = f"opt_G.{idx}.{moment}"
                if key in tensors:
                    tensors[key] = widen(tensors[key], p.shape, names[idx], c, new.config)
    meta["train_config"]["model"].update(model_changes)
    with atomic_dir(ckpt) as tmp:
        model_io.save(new, tmp / "generator")
        save_file(tensors, str(tmp / STATE))
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    with open(run / "recipe_changes.jsonl", "a") as f:
        f.write(json.dumps({"step": meta["step"], "changed": changes}) + "\n")
    return meta["step"]


def parser() -> cli.Parser:
    p = cli.Parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a training run directory (OUT of rtgan.train)")
    p.add_argument("--noise-nc", type=int, default=4, help="noise channels to add")
    p.add_argument("--decoder", action="store_true", help="pix2pixHD: also add the noise to every upsampling stage")
    p.add_argument(
        "--init-std",
        type=float,
        default=0.0,
        help="with --decoder: start its noise weights off zero, N(0, INIT_STD) (default: %(default)s)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda: _add(argv), PROG)


def _add(argv: list[str] | None) -> None:
    a = parser().parse_args(argv)
    check_run(a.run)
    if a.noise_nc <= 0 or a.init_std < 0:
        raise ConfigError(f"--noise-nc must be positive and --init-std >= 0 (got {a.noise_nc}, {a.init_std:g})")
    if a.init_std and not a.decoder:
        raise ConfigError("--init-std moves the decoder noise's weights: add --decoder")
    step = add_noise_channels(a.run, a.noise_nc, a.decoder, a.init_std)
    print(f"{a.run}: noise added at step {step}" + (" (decoder too)" if a.decoder else ""))


if __name__ == "__main__":
    sys.exit(main())
