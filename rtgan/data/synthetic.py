"""The procedural landscapes as a PyTorch dataset, rendered on first access and kept in memory."""

from __future__ import annotations

import numpy as np
import torch

from . import landscapes


class LandscapeDataset(torch.utils.data.Dataset):
    """Scene i is `landscapes.render(seed + i)`; items match the folder datasets' dicts.

    Rendering costs ~0.1 s per 256x256 scene, so each one is kept (uint8, 4 bytes a pixel) after
    the first epoch instead of being redrawn; `cache=False` streams an endless variety instead.
    """

    def __init__(self, count: int, height: int = 256, width: int = 256, seed: int = 0, cache: bool = True):
        self.count, self.height, self.width, self.seed, self.cache = count, height, width, seed, cache
        self._store: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.count

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self._store:
            return self._store[index]
        pair = landscapes.render(self.seed + index, self.height, self.width)
        if self.cache:
            self._store[index] = pair
        return pair

    def prerender(self, processes: int) -> None:
        """Render every scene now, `processes` at a time, so that DataLoader workers forked afterwards
        share one filled cache instead of each rendering (and holding) the whole set again."""
        todo = [i for i in range(self.count) if i not in self._store]
        if not self.cache or not todo:
            return
        from concurrent.futures import ProcessPoolExecutor

        from rich.progress import track

        seeds = [self.seed + i for i in todo]
        with ProcessPoolExecutor(processes) as pool:
            pairs = pool.map(
                landscapes.render, seeds, [self.height] * len(seeds), [self.width] * len(seeds), chunksize=8
            )
            for i, pair in zip(todo, track(pairs, total=len(todo), description="rendering landscapes", transient=True)):
                self._store[i] = pair

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.count:
            raise IndexError(index)
        labels, image = self.pair(index)
        return {
            "labels": torch.from_numpy(labels.astype(np.int64)),
            "image": torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1,
            "path": f"landscape:{self.seed + index}",
        }


class SketchDataset(torch.utils.data.Dataset):
    """Pencil sketches of the procedural landscapes and their photos (`rtgan.data.sketches`).

    Item k is scene k // variants drawn in style k: each scene is rendered once and kept (as in
    `LandscapeDataset`), its sketches are drawn on access (a few ms), so `variants` styles per scene
    cost no memory. Items carry the scene's label map too, for quality checks and sample grids.
    """

    def __init__(self, count: int, height: int = 256, width: int = 256, seed: int = 0, variants: int = 1):
        self.scenes = LandscapeDataset(count, height, width, seed)
        self.variants = variants

    def __len__(self) -> int:
        return len(self.scenes) * self.variants

    def prerender(self, processes: int) -> None:
        self.scenes.prerender(processes)

    def __getitem__(self, index: int) -> dict:
        from .sketches import sketch

        if not 0 <= index < len(self):
            raise IndexError(index)
        scene = index // self.variants
        labels, image = self.scenes.pair(scene)
        drawing = sketch(labels, image, style=self.scenes.seed + index)
        return {
            "source": torch.from_numpy(drawing).permute(2, 0, 1).float() / 127.5 - 1,
            "labels": torch.from_numpy(labels.astype(np.int64)),
            "image": torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1,
            "path": f"sketch:{self.scenes.seed + scene}:{self.scenes.seed + index}",
        }
