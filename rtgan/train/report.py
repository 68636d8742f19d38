"""What a training run shows and leaves behind: a progress bar, a loss log, TensorBoard, sample grids."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import torch


class Progress:
    """A rich progress bar with the latest losses and it/s; silent when disabled (other ranks, tests)."""

    def __init__(self, total: int, start: int, enabled: bool = True):
        self.enabled, self.total, self.start = enabled, total, start

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}"),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("train", total=self.total, completed=self.start, rate="", losses="")
            self._time0 = time.perf_counter()
        return self

    def update(self, step: int, losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        rate = (step - self.start) / max(time.perf_counter() - self._time0, 1e-9)
        text = " ".join(f"{k} {v:.3f}" for k, v in losses.items())
        self._bar.update(self._task, completed=step, rate=f"{rate:.2f} it/s", losses=text)

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.__exit__(*exc)


class LossLog:
    """losses.jsonl (one line per logged step, read by model cards) plus TensorBoard scalars when installed."""

    def __init__(self, out: Path, enabled: bool = True):
        self.enabled, self._tb = enabled, None
        if not enabled:
            return
        out.mkdir(parents=True, exist_ok=True)
        self._file = open(out / "losses.jsonl", "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            print("TensorBoard scalars off: `pip install tensorboard` to write them")

    def write(self, step: int, losses: dict[str, float], elapsed: float) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps({"step": step, "elapsed_s": round(elapsed, 2), **losses}) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in losses.items():
                self._tb.add_scalar(f"loss/{k}", v, step)

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


def _to_rgb(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def sample_grid(generator, dataset, count: int = 4, seed: int = 0) -> np.ndarray:
    """Rows of labels | real | generated (| generated from a random style, for VAE models)."""
    from ..data.landscapes import PALETTE
    from ..scenes import colorize

    if "source" in dataset[0]:
        return _image_grid(generator, dataset, count)
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    labels = torch.stack([it["labels"] for it in items])
    image = torch.stack([it["image"] for it in items])
    instance = torch.stack([it["instance"] for it in items]) if "instance" in items[0] else None
    dev = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        sem = generator.prepare(labels.to(dev), None if instance is None else instance.to(dev))
        columns = [colorize(labels.numpy().astype(np.int32), PALETTE), _to_rgb(image)]
        if getattr(generator, "encoder", None) is not None:
            mu, _ = generator.encode(image.to(dev))
            columns.append(_to_rgb(generator(sem, mu)))
            z = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed)).to(dev)
            columns.append(_to_rgb(generator(sem, z)))
        else:
            columns.append(_to_rgb(generator(sem)))
    finally:
        generator.train(was_training)
    return np.concatenate([np.concatenate(list(col), 0) for col in columns], 1)


def _image_grid(generator, dataset, count: int) -> np.ndarray:
    """Rows of source | real | generated, for image-to-image generators."""
    step = max(len(dataset) // count, 1)  # distinct scenes, not styles of one
    items = [dataset[i * step] for i in range(min(count, len(dataset)))]
    source = torch.stack([it["source"] for it in items])
    image = torch.stack([it["image"] for it in items])
    dev = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        fake = generator(source.to(dev))
    finally:
        generator.train(was_training)
    columns = [_to_rgb(source), _to_rgb(image), _to_rgb(fake)]
    return np.concatenate([np.concatenate(list(col), 0) for col in columns], 1)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_samples(trainer, directory: Path) -> Path:
    from ..utils.atomic import atomic_write_bytes

    png = png_bytes(sample_grid(trainer.generator, trainer.dataset, seed=trainer.cfg.seed))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step_{trainer.step:07d}.png"
    atomic_write_bytes(path, png)
    atomic_write_bytes(directory / "latest.png", png)
    return path
