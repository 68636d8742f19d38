"""The errors of rtgan.serve, beside rtgan's own (`InputError` for a bad tensor, `ConfigError` for a bad option)."""

from __future__ import annotations

from ..errors import RtganError


class RepositoryError(RtganError):
    """A Triton model repository is malformed, or a config disagrees with its model file; the message lists each."""


class ServerError(RtganError):
    """The inference server answered with an error that is not about the request's tensors."""


class ServerUnavailable(ServerError, ConnectionError):
    """No server answers at the address, or the server or its model is not ready (yet)."""
