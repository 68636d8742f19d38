"""Typed errors: every failure a user can cause names the bad value and what was expected."""


class RtganError(Exception):
    """Base class of every error rtgan raises on purpose."""


class InputError(RtganError, ValueError):
    """A tensor handed to a model or engine has the wrong shape, dtype, range or values."""


class ConfigError(RtganError, ValueError):
    """A configuration or option is unknown, inconsistent or unsupported."""


class CheckpointError(RtganError):
    """A weights file is unreadable, unsafe, or does not fit the model it is loaded into."""
