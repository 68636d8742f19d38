"""`python -m rtgan.train.add_noise --run RUN --noise_nc 4`: give a run noise inputs, as a warm start.

Instead of starting over, the noise inputs get zero weights (and zero Adam moments), so the widened
generator paints exactly what the run's did and training then learns to use the noise: in SPADE
and pix2pixHD every conv that reads the semantic map gains input channels; in ASAPNet the low-res
stream's last conv gains the outputs that become the MLPs' noise weights. The run's checkpoint and
recipe_changes.jsonl are updated; resume with the same command and `--set noise_nc=N` (or a
preset that has it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError
from ..models import build
from ..models import io as model_io
from ..utils.atomic import atomic_dir
from .checkpoint import META, STATE, read_state
from .trainer import CHECKPOINT
from .widen import widen, widened_state


def add_noise_channels(run: str | Path, noise_nc: int) -> int:
    """Widen RUN's checkpoint to `noise_nc` noise channels in place; returns the checkpoint's step."""
    from safetensors.torch import save_file

    run = Path(run)
    ckpt = run / CHECKPOINT
    meta, tensors = read_state(ckpt)
    old = model_io.load(ckpt / "generator")
    if old.config.noise_nc != 0 or noise_nc <= 0:
        raise ConfigError(f"{run} has noise_nc={old.config.noise_nc}; this adds noise to a run without any")
    new = build(old.config.replace(noise_nc=noise_nc))
    new.load_state_dict(widened_state(old, new.config))
    # opt_G's state is indexed by position in generator.parameters(), as the trainer built it
    names = [k for k, _ in new.named_parameters()]
    for idx, p in enumerate(new.parameters()):
        for moment in ("exp_avg", "exp_avg_sq"):
            key = f"opt_G.{idx}.{moment}"
            if key in tensors:
                tensors[key] = widen(tensors[key], p.shape, names[idx], old.config, new.config)
    meta["train_config"]["model"]["noise_nc"] = noise_nc
    with atomic_dir(ckpt) as tmp:
        model_io.save(new, tmp / "generator")
        save_file(tensors, str(tmp / STATE))
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    with open(run / "recipe_changes.jsonl", "a") as f:
        f.write(json.dumps({"step": meta["step"], "changed": {"noise_nc": [0, noise_nc]}}) + "\n")
    return meta["step"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m rtgan.train.add_noise", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a training run directory (OUT of rtgan.train)")
    p.add_argument("--noise_nc", type=int, default=4)
    a = p.parse_args(argv)
    step = add_noise_channels(a.run, a.noise_nc)
    print(f"{a.run}: {a.noise_nc} noise channels added at step {step}")


if __name__ == "__main__":
    main()
