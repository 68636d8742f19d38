"""rtgan: real-time semantic image synthesis (SPADE, ASAPNet, pix2pixHD).

Importing `rtgan` does not import PyTorch: deployments that only run engines need NumPy and a
runtime. `rtgan.models` (PyTorch) is imported on use.
"""

from ._version import __version__  # noqa: E402
from .engine import Engine  # noqa: E402
from .errors import CheckpointError, ConfigError, InputError, RtganError  # noqa: E402


def __getattr__(name):
    # `rtgan.export` is a subpackage that is also callable: `rtgan.export(model, backend=...)`.
    # Imported on first use because it needs PyTorch and the engine must not.
    if name == "export":
        import importlib

        return importlib.import_module(".export", __name__)
    raise AttributeError(f"module 'rtgan' has no attribute {name!r}")


__all__ = ["CheckpointError", "ConfigError", "Engine", "InputError", "RtganError", "__version__", "export"]
