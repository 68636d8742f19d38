"""rtgan's own format (safetensors + config.json) and official-format checkpoints round-trip exactly."""

import json

import pytest
import torch

from rtgan import CheckpointError
from rtgan.models import load, load_official, save

from helpers import VARIANTS, inputs, make


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_save_load_round_trip(variant, tmp_path):
    model, size = make(variant)
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    _, _, sem = inputs(model, size)
    z = torch.randn(2, model.config.z_dim) if getattr(model.config, "use_vae", False) else None
    with torch.no_grad():
        assert torch.equal(model(sem, z=z), loaded(sem, z=z))


def test_fp16_storage_loads_as_fp32(tmp_path):
    model, size = make("asap-tile16")
    save(model, tmp_path / "m", dtype=torch.float16)
    loaded = load(tmp_path / "m")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    _, _, sem = inputs(model, size)
    with torch.no_grad():
        assert (model(sem) - loaded(sem)).abs().max() < 2e-2


def test_save_replaces_atomically(tmp_path):
    a, _ = make("p2phd-global")
    b, _ = make("asap-tile16")
    save(a, tmp_path / "m")
    save(b, tmp_path / "m")
    assert load(tmp_path / "m").config == b.config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary or backup left behind

    class Boom(Exception):
        pass

    def broken_state_dict():
        raise Boom

    b.state_dict = broken_state_dict
    with pytest.raises(Boom):
        save(b, tmp_path / "m")
    assert load(tmp_path / "m").config.arch == "asapnet"  # old copy intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_saved_files_are_readable_by_others(tmp_path):
    # installed models and shared engine caches are read by other users; safetensors writes 0600
    model, _ = make("p2phd-global")
    save(model, tmp_path / "m")
    for f in (tmp_path / "m").iterdir():
        assert f.stat().st_mode & 0o044 == 0o044, f.name


def test_corrupted_weights_are_reported(tmp_path):
    model, _ = make("p2phd-global")
    save(model, tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load(tmp_path / "m")
    path.write_bytes(b"\x00" * 10)
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["sha256"] = {}
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupted JSON"):
        load(tmp_path / "m")


@pytest.mark.parametrize("variant", ["spade-vae", "asap-tile32-tent-reflect", "p2phd-local"])
def test_official_format_checkpoint(variant, tmp_path):
    """A state dict saved as the official trainers do loads through load_official and gives the same image."""
    model, size = make(variant)
    from helpers import VARIANTS as V

    arch, options, _ = V[variant]
    state = model.state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("encoder.")}, tmp_path / "latest_net_G.pth")
    kwargs = {}
    if any(k.startswith("encoder.") for k in state):
        torch.save({k[8:]: v for k, v in state.items() if k.startswith("encoder.")}, tmp_path / "latest_net_E.pth")
        kwargs["encoder"] = tmp_path / "latest_net_E.pth"
    loaded = load_official(arch, tmp_path / "latest_net_G.pth", **options, **kwargs)
    assert not loaded.training
    _, _, sem = inputs(model, size)
    z = torch.randn(2, model.config.z_dim) if getattr(model.config, "use_vae", False) else None
    with torch.no_grad():
        assert torch.equal(model(sem, z=z), loaded(sem, z=z))
    if kwargs:
        image = torch.rand(1, 3, 64, 64)
        assert torch.equal(model.encode(image)[0], loaded.encode(image)[0])


def test_vae_without_encoder_round_trips(tmp_path):
    model, _ = make("spade-vae")
    arch, options, _ = VARIANTS["spade-vae"]
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}, tmp_path / "G.pth")
    loaded = load_official(arch, tmp_path / "G.pth", **options)
    assert loaded.encoder is None
    save(loaded, tmp_path / "m")
    assert load(tmp_path / "m").encoder is None
