"""rtgan: real-time semantic image synthesis (SPADE, ASAPNet, pix2pixHD).

Importing `rtgan` does not import PyTorch: deployments that only run engines need NumPy and a
runtime. `rtgan.models` (PyTorch) is imported on use.
"""

__version__ = "0.1.0"

from .errors import CheckpointError, ConfigError, InputError, RtganError  # noqa: E402

__all__ = ["CheckpointError", "ConfigError", "InputError", "RtganError", "__version__"]
