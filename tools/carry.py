"""`python tools/carry.py --run RUN --out training/NAME`: a run's state small enough to commit.

Machines here keep nothing outside git between sessions, so a run that takes many sessions is
carried in the repository: the checkpoint's generator and discriminator (fp32, exact) plus the
run's logs, without the optimizer state, which is two thirds of a checkpoint. Dropping it costs
little: under TTUR, Adam's betas are (0, 0.9), so its moments remember about ten steps and a fresh
Adam is back in stride within a few dozen. To continue, copy the carried directory to a run
directory and train with that `--out`; the trainer notes that the optimizers restart.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from rtgan.errors import ConfigError
from rtgan.train.runs import CHECKPOINT, META, STATE, check_run
from rtgan.utils import cli
from rtgan.utils.atomic import atomic_dir

PROG = "python tools/carry.py"

LOGS = ("train_config.json", "losses.jsonl", "recipe_changes.jsonl")


def carry(run: str | Path, out: str | Path) -> int:
    """Write RUN's checkpoint without optimizer state, and its logs, to OUT; returns the step."""
    from safetensors.torch import save_file  # here, not above: the command checks its arguments first

    from rtgan.models import io as model_io
    from rtgan.train.checkpoint import read_state

    run, out = Path(run), Path(out)
    meta, tensors = read_state(run / CHECKPOINT)
    generator = model_io.load(run / CHECKPOINT / "generator")
    meta = {k: v for k, v in meta.items() if k != "optimizers"}
    with atomic_dir(out) as tmp:
        model_io.save(generator, tmp / CHECKPOINT / "generator")
        save_file({k: v for k, v in tensors.items() if k.startswith("D.")}, str(tmp / CHECKPOINT / STATE))
        (tmp / CHECKPOINT / META).write_text(json.dumps(meta, indent=2) + "\n")
        for name in LOGS:
            if (run / name).is_file():
                shutil.copy2(run / name, tmp / name)
    return meta["step"]


def parser() -> cli.Parser:
    p = cli.Parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a training run directory (OUT of rtgan.train)")
    p.add_argument("--out", required=True, help="where to write the carried run, e.g. training/landscape-spade")
    return p


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda: _carry(argv), PROG)


def _carry(argv: list[str] | None) -> None:
    a = parser().parse_args(argv)
    check_run(a.run)
    if Path(a.out).resolve() == Path(a.run).resolve():
        raise ConfigError(f"--out {a.out} is the run itself; carry it to another folder (e.g. training/NAME)")
    step = carry(a.run, a.out)
    print(f"{a.out}: {a.run} at step {step}, without optimizer state")


if __name__ == "__main__":
    sys.exit(main())
