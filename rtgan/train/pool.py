"""CycleGAN's image pool (Shrivastava et al. 2017): D trains on a history of generated images.

The contract is the official `util/image_pool.py` one, image by image:
- until the pool holds `pool_size` images, each new image is stored and returned as is;
- once full, with probability 0.5 a stored image, picked uniformly, is returned and the new image
  takes its slot; otherwise the new image is returned and the pool is unchanged;
- `pool_size` 0 turns the pool off (the batch is returned as is).

Why a history: a discriminator that sees only the latest fakes can forget older modes, and the
generator then cycles back to them; an old fake keeps D honest about them.

Unlike the official pool (Python's global `random`), the draws come from the pool's own
`torch.Generator`, so two runs with one seed query the same images, and `state_dict` holds the
stored images and that generator's state, so a resumed run continues the same sequence.
"""

from __future__ import annotations

import torch


class ImagePool:
    """History of generated images; `query(batch)` returns what the discriminator should see."""

    def __init__(self, pool_size: int = 50, seed: int = 0):
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []  # each (C, H, W), detached
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch (B, C, H, W) -> a batch of the same shape, detached (D's input, never G's)."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        return torch.stack([self._one(image) for image in images])

    def _one(self, image: torch.Tensor) -> torch.Tensor:
        if len(self.images) < self.pool_size:
            self.images.append(image.clone())
            return image
        if float(torch.rand((), generator=self.generator)) > 0.5:  # official: random.uniform(0, 1) > 0.5
            slot = int(torch.randint(0, self.pool_size, (), generator=self.generator))
            old, self.images[slot] = self.images[slot], image.clone()
            return old
        return image

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only (safetensors): the stored images stacked, and the generator's state."""
        state = {"rng": self.generator.get_state()}
        if self.images:
            state["images"] = torch.stack(self.images).cpu().contiguous()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        images = state.get("images")
        self.images = [] if images is None else [im.to(device) for im in images]
        if len(self.images) > self.pool_size:
            raise ValueError(f"a saved pool of {len(self.images)} images does not fit pool_size {self.pool_size}")
        self.generator.set_state(state["rng"])
