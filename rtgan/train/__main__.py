"""`python -m rtgan.train`: train a generator, resuming from OUT/checkpoint when it exists.

    python -m rtgan.train --recipe landscape-asapnet --out runs/asapnet --steps 20000
    torchrun --nproc_per_node 2 -m rtgan.train ...        # DDP (NCCL on GPUs, gloo on CPU)

Every argument is checked (rtgan.train.options) before PyTorch is imported.
"""

from __future__ import annotations

import os
import signal
import sys

from ..errors import ConfigError
from ..utils import cli
from .options import PROG, check, notices, parse


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda: _train(argv), PROG)


def _train(argv: list[str] | None) -> int:
    args = parse(argv)
    config = check(args)
    if int(os.environ.get("RANK", "0")) == 0:
        for line in notices(args, config):
            print(line, flush=True)

    import torch

    from .trainer import TrainConfig, train

    config["device"] = _device(torch, config["device"])
    if args.threads:
        torch.set_num_threads(args.threads)
    trainer = train(TrainConfig.from_dict(config))  # Ctrl-C: saved, then KeyboardInterrupt (cli.run: 130)
    if trainer.interrupted == "SIGTERM":
        return _end_by(signal.SIGTERM)
    return 0


def _device(torch, device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: PyTorch sees no CUDA device here; use --device cpu (or auto)")
    return device


def _end_by(sig: int) -> int:
    """End as killed by `sig`, now that the checkpoint is saved: the shell sees 128 + sig (143 for
    SIGTERM) and a parent process -sig, as it would from a job that did not catch the signal (a
    scheduler, or benchmarks/gpu/train.py, tells a stopped run from a failed one by that)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return 128 + sig  # where a signal does not end the process (Windows)


if __name__ == "__main__":
    sys.exit(main())
