"""One table of tensor element types, in the four spellings serving meets: NumPy (rtgan's manifests),
Triton's model config (`TYPE_INT32`), the KServe protocol (`INT32`, what the server's metadata and the
clients use) and ONNX (`TensorProto.INT32` = 6)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

# numpy name -> (config data_type, protocol datatype, ONNX TensorProto element type)
DTYPES = {
    "bool": ("TYPE_BOOL", "BOOL", 9),
    "uint8": ("TYPE_UINT8", "UINT8", 2),
    "int8": ("TYPE_INT8", "INT8", 3),
    "uint16": ("TYPE_UINT16", "UINT16", 4),
    "int16": ("TYPE_INT16", "INT16", 5),
    "int32": ("TYPE_INT32", "INT32", 6),
    "int64": ("TYPE_INT64", "INT64", 7),
    "float16": ("TYPE_FP16", "FP16", 10),
    "float32": ("TYPE_FP32", "FP32", 1),
    "float64": ("TYPE_FP64", "FP64", 11),
}
_BY_CONFIG = {v[0]: k for k, v in DTYPES.items()}
_BY_PROTOCOL = {v[1]: k for k, v in DTYPES.items()}
_BY_ONNX = {v[2]: k for k, v in DTYPES.items()}


def config_type(dtype: str | np.dtype) -> str:
    """'int32' -> 'TYPE_INT32'."""
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise ConfigError(f"dtype {name} has no Triton type here; rtgan serves {', '.join(DTYPES)}")
    return DTYPES[name][0]


def protocol_type(dtype: str | np.dtype) -> str:
    """'int32' -> 'INT32' (the KServe / tritonclient spelling)."""
    return config_type(dtype).removeprefix("TYPE_")


def from_config(data_type: str) -> str | None:
    """'TYPE_INT32' -> 'int32' (None for types rtgan does not serve, e.g. TYPE_STRING)."""
    return _BY_CONFIG.get(data_type)


def from_protocol(datatype: str) -> str | None:
    """'INT32' -> 'int32'."""
    return _BY_PROTOCOL.get(datatype)


def from_onnx(elem_type: int) -> str | None:
    """TensorProto.INT32 (6) -> 'int32'."""
    return _BY_ONNX.get(elem_type)
