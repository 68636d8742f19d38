"""Serving at scale: rtgan engines behind NVIDIA Triton Inference Server.

- `python -m rtgan.serve repository ARTIFACT... --out REPO` writes a Triton model repository
  (`rtgan.serve.repository`), optionally with a photo -> painting ensemble (`rtgan.serve.ensemble`);
  `python -m rtgan.serve check REPO` checks it offline against its model files (`rtgan.serve.check`).
- `python -m rtgan.serve run ARTIFACT` serves one engine on PyTriton (`rtgan.serve.pytriton_server`),
  in an environment of its own (PyTriton needs numpy < 2).
- `rtgan.serve.Client` paints through either server: `Client("localhost:8001", model=...).paint(labels)`.

Imports here are lazy: the client needs only tritonclient and NumPy, the repository writer no server.
"""

from .errors import RepositoryError, ServerError, ServerUnavailable

__all__ = ["Client", "RepositoryError", "ServerError", "ServerUnavailable"]


def __getattr__(name: str):
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'rtgan.serve' has no attribute {name!r}")
