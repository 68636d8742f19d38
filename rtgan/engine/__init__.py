"""The runtime: loads an exported artifact and paints label maps. Needs NumPy plus one backend library."""

from .engine import Engine, available_backends
from .manifest import ArtifactError, read_manifest
from .tensorrt import BackendUnavailable

__all__ = ["ArtifactError", "BackendUnavailable", "Engine", "available_backends", "read_manifest"]
