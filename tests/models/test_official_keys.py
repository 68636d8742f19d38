"""Every recorded official configuration builds a model with exactly the official keys, shapes and size."""

import json
from pathlib import Path

import pytest
import torch

from rtgan.models import build, make_config

# A copy of ../shared/reference/official-keys (recorded from the official code), so CI needs no checkout beside it.
REFERENCE = Path(__file__).parents[1] / "data" / "official-keys"
SHARED = Path(__file__).parents[3] / "shared" / "reference" / "official-keys"
FILES = sorted(REFERENCE.glob("*.json"))
# file-name prefix -> architecture (the two DCGANs are different architectures, see rtgan/models/classic.py)
ARCH = {
    "spade": "spade",
    "asap": "asapnet",
    "p2phd": "pix2pixhd",
    "dcgan_pytorch_examples": "dcgan",
    "dcgan_pytorch_gan": "dcgan-pytorch-gan",
    "cgan_pytorch_gan": "cgan",
    "infogan_pytorch_gan": "infogan",
    "pix2pix": "pix2pix",
    "cyclegan": "cyclegan",
    "munit": "munit",
    "stylegan": "stylegan",  # rosinality StyledGenerator(512): the same keys at every released size
    "oasis": "oasis",  # boschresearch/OASIS_Generator: the ade20k, cityscapes and coco dataset modes
    "sean": "sean",  # ZPdesu/SEAN SPADEGenerator, Zencoder included (CelebAMask-HQ, the only release)
}
# buffers that files of the 2018 pix2pix/CycleGAN code hold and the loader drops (see test_pix2pix.py)
STALE = ("running_mean", "running_var", "num_batches_tracked")


def arch_of(stem: str) -> str | None:
    return next((a for k, a in ARCH.items() if stem == k or stem.startswith(k + "_")), None)


def test_reference_copy_is_current():
    assert len(FILES) >= 10
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present to compare with")
    # the families implemented here (the shared folder also holds the ones still to come)
    ours = sorted(p.name for p in SHARED.glob("*.json") if arch_of(p.stem))
    assert ours == [p.name for p in FILES]
    for p in FILES:
        assert (SHARED / p.name).read_bytes() == p.read_bytes(), p.name


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_keys_shapes_and_size(path):
    ref = json.loads(path.read_text())
    arch = arch_of(path.stem)
    # MUNIT's options nest its YAML's `gen:` block
    options = {k: v for k, v in ref["options"].items() if k != "gen"} | ref["options"].get("gen", {})
    options.pop("model", None)  # pix2pix/CycleGAN: the training script's --model, not a generator option
    if "norm_E" in ref:
        options["norm_E"] = ref["norm_E"]
    with torch.device("meta"):
        model = build(make_config(arch, **options))
    if arch == "munit":  # a checkpoint holds two of these generators, under 'a' and 'b'
        for gen in (model.gen_a, model.gen_b):
            assert {k: list(v.shape) for k, v in gen.state_dict().items()} == ref["netG"]
            assert sum(p.numel() for p in gen.parameters()) == ref["netG_params"]
        return
    state = model.state_dict()
    got_g = {k: list(v.shape) for k, v in state.items() if not k.startswith("encoder.")}
    want = ref["netG"]
    if path.stem.endswith("_released"):
        want = {k: v for k, v in want.items() if k.rpartition(".")[2] not in STALE}
    assert got_g == want
    n_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("encoder."))
    assert n_params == ref["netG_params"]
    if "netE" in ref:
        assert {k: list(v.shape) for k, v in model.encoder.state_dict().items()} == ref["netE"]
    else:
        assert getattr(model, "encoder", None) is None
