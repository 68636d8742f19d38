"""Differential test of MUNIT (rtgan/models/munit.py) against NVlabs/MUNIT's `networks.py`.

Skipped unless RTGAN_OFFICIAL_DIR holds a `MUNIT/` checkout. networks.py imports only torch, so it
is loaded by file path under a private module name (official_import.py's isolation is for the
repositories whose top-level `models` package collides). Two official `AdaINGen`s get random
weights (the trainer's kaiming init, plus random biases, LayerNorm betas and AdaIN buffers); their
`{'a': ..., 'b': ...}` dict goes through `munit_state_dict` into a strict load, and both
directions are compared with what the official test script runs:
`gen_b.decode(gen_a.encode(x_a)[0], s)` for a -> b, and `gen_b.encode(x_b)[1]` for a style image.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from rtgan.models.munit import STALE_KEYS, MUNITConfig, MUNITGenerator, munit_state_dict

from official_import import load_file

TOL = 1e-4
ROOT = os.environ.get("RTGAN_OFFICIAL_DIR")
EDGES2SHOES = dict(dim=64, mlp_dim=256, style_dim=8, activ="relu", n_downsample=2, n_res=4, pad_type="reflect")

# case -> (gen block, input_dim_a, input_dim_b, [(batch, H, W), ...])
CASES = {
    "edges2shoes-dim16": (dict(EDGES2SHOES, dim=16, mlp_dim=64), 3, 3, [(2, 128, 128), (1, 128, 192)]),
    "edges2shoes-full": (EDGES2SHOES, 3, 3, [(1, 128, 128)]),
    "gray2rgb-prelu-zero-down3": (
        dict(dim=8, mlp_dim=32, style_dim=4, activ="prelu", n_downsample=3, n_res=2, pad_type="zero"),
        1,
        3,
        [(2, 64, 96)],
    ),
    "lrelu-replicate-down1": (
        dict(dim=8, mlp_dim=16, style_dim=6, activ="lrelu", n_downsample=1, n_res=3, pad_type="replicate"),
        3,
        1,
        [(3, 48, 32)],
    ),
}


def official_networks():
    return load_file("MUNIT/networks.py")


@torch.no_grad()
def randomized(gen: nn.Module, seed: int) -> nn.Module:
    """utils.weights_init('kaiming') (the edges2shoes init), then random biases and LayerNorm betas,
    so that a swapped or skipped tensor shows; AdaIN buffers get values the forward must ignore."""
    g = torch.Generator().manual_seed(seed)
    for m in gen.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", generator=g)
            m.bias.normal_(0, 0.1, generator=g)
        elif type(m).__name__ == "LayerNorm":
            m.beta.normal_(0, 0.1, generator=g)
        elif type(m).__name__ == "AdaptiveInstanceNorm2d":
            m.running_mean.normal_(0, 1, generator=g)
            m.running_var.uniform_(0.5, 2, generator=g)
        elif isinstance(m, nn.PReLU):
            m.weight.uniform_(0, 0.5, generator=g)
    return gen


@pytest.mark.parametrize("case", list(CASES))
def test_translation_and_style_match_official(case):
    networks = official_networks()
    block, dim_a, dim_b, sizes = CASES[case]
    gen_a = randomized(networks.AdaINGen(dim_a, block), seed=1).eval()
    gen_b = randomized(networks.AdaINGen(dim_b, block), seed=2).eval()
    config = MUNITConfig(**block, input_dim_a=dim_a, input_dim_b=dim_b)
    state = munit_state_dict({"a": gen_a.state_dict(), "b": gen_b.state_dict()}, config)
    a2b, b2a = MUNITGenerator(config).eval(), MUNITGenerator(config.replace(a2b=False)).eval()
    a2b.load_state_dict(state, strict=True)
    b2a.load_state_dict(state, strict=True)

    g = torch.Generator().manual_seed(3)
    for batch, h, w in sizes:
        x_a = torch.rand(batch, dim_a, h, w, generator=g) * 2 - 1
        x_b = torch.rand(batch, dim_b, h, w, generator=g) * 2 - 1
        s = torch.randn(batch, block["style_dim"], 1, 1, generator=g)  # test.py's random style
        with torch.no_grad():
            pairs = {
                "a2b": (a2b(x_a, s), gen_b.decode(gen_a.encode(x_a)[0], s)),
                "b2a": (b2a(x_b, s), gen_a.decode(gen_b.encode(x_b)[0], s)),
                "style_b": (a2b.encode_style(x_b), gen_b.encode(x_b)[1]),
                "style_a": (b2a.encode_style(x_a), gen_a.encode(x_a)[1]),
            }
            s_b = pairs["style_b"][1]  # example-guided: the style of a b image
            pairs["a2b_guided"] = (a2b(x_a, a2b.encode_style(x_b)), gen_b.decode(gen_a.encode(x_a)[0], s_b))
        for name, (ours, theirs) in pairs.items():
            err = (ours - theirs).abs().max().item()
            print(f"{case} {batch}x{h}x{w} {name}: max abs error {err:.2e}, official std {theirs.std():.3f}")
            assert ours.shape == theirs.shape
            assert err <= TOL, f"{case} {name} at {h}x{w}: {err:.2e}"
        out = pairs["a2b"][1]
        assert out.shape == (batch, dim_b, h, w)
        assert out.std() > 0.05 and (out.abs() > 0.99).float().mean() < 0.5, "degenerate outputs prove little"


def test_stale_keys_are_the_official_test_scripts_list():
    """STALE_KEYS == the MUNIT names utils.pytorch03_to_pytorch04 deletes (read from the source, not run)."""
    import ast

    path = Path(ROOT or "") / "MUNIT" / "utils.py"
    if not ROOT or not path.is_file():
        pytest.skip("official MUNIT checkout not found: set RTGAN_OFFICIAL_DIR to a folder with MUNIT/utils.py")
    fn = next(n for n in ast.walk(ast.parse(path.read_text())) if getattr(n, "name", "") == "pytorch03_to_pytorch04")
    lists = [ast.literal_eval(n) for n in ast.walk(fn) if isinstance(n, ast.Tuple) and len(n.elts) > 2]
    munit = next(t for t in lists if t[0].startswith("enc_content."))  # the other list is for UNIT's `enc.`
    assert sorted(munit) == sorted(STALE_KEYS)
