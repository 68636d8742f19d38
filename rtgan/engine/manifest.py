"""manifest.json of an artifact directory: what it holds, how it was built, and checks on load."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import RtganError
from .contract import INPUT_DTYPES, MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, ONNX_FILE


class ArtifactError(RtganError):
    """An artifact directory is incomplete, corrupted, or was built for other libraries or hardware."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(directory: str | os.PathLike, *, verify_files: bool = True) -> dict[str, Any]:
    """Read and check `manifest.json`: format, version, every field the engine reads (its type and
    range), and the content hash of every listed file."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory}: no {MANIFEST}; not an rtgan artifact (or an interrupted export)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ArtifactError(f"{path}: corrupted JSON: {e}") from None
    except OSError as e:
        raise ArtifactError(f"{path}: unreadable: {e}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: a manifest is a JSON object, got {type(manifest).__name__}")
    fmt, version = manifest.get("format"), manifest.get("format_version")
    if fmt != MANIFEST_FORMAT or not _is_int(version) or version != MANIFEST_VERSION:
        raise ArtifactError(
            f"{path}: format {fmt!r:.40} v{version!r:.20} is not {MANIFEST_FORMAT!r} v{MANIFEST_VERSION}; "
            "re-export with this rtgan"
        )
    check_fields(manifest, path)
    if verify_files:
        for name, digest in manifest["files"].items():
            f = directory / name
            if not f.is_file():
                raise ArtifactError(f"{directory}: {name} listed in the manifest is missing")
            try:
                ok = sha256_file(f) == digest
            except OSError as e:
                raise ArtifactError(f"{f}: unreadable: {e}") from None
            if not ok:
                raise ArtifactError(f"{f}: SHA-256 does not match the manifest (corrupted or modified)")
    return manifest


# the files each backend opens, which its manifest must list (so they are hash-checked before use)
BACKEND_FILES = {
    "onnxruntime": (ONNX_FILE,),
    "openvino": ("model.xml", "model.bin"),
    "torch": ("model/config.json", "model/model.safetensors"),
    "tensorrt": ("model.plan",),
    "tensorrt-rtx": ("model.plan",),
}
_MAX_ID = 2**31 - 1  # label ids reach the graph as int32
_MAX_SIZE = 2**16  # height, width, max_batch
_MAX_Z = 2**20  # z_dim: the engine samples (batch, z_dim) normals when z is not given


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_fields(m: dict[str, Any], path: str | os.PathLike = MANIFEST) -> None:
    """Refuse a manifest whose fields the engine reads are missing or of the wrong JSON type or range.

    Raises ArtifactError naming the field, what it must be and what it holds. Newer optional fields
    (`class_names`, `signature`, ...) may be absent; when present they are checked too.
    """

    def bad(field: str, want: str) -> ArtifactError:
        if field in m:
            try:
                shown = json.dumps(m[field], default=str)[:80]
            except (ValueError, RecursionError):
                shown = "..."
            got = f"got {shown} ({type(m[field]).__name__})"
        else:
            got = "it is missing"
        return ArtifactError(f"{path}: field {field!r} must be {want}; {got} (a damaged or hand-edited manifest?)")

    def positive(field: str, most: int, optional: bool = False) -> None:
        v = m.get(field)
        if optional and v is None:
            return
        if not (_is_int(v) and 1 <= v <= most):
            raise bad(field, f"an integer in 1..{most}" + (" or null" if optional else ""))

    def obj(field: str) -> dict | None:
        v = m.get(field)
        if v is not None and not isinstance(v, dict):
            raise bad(field, "an object or null")
        return v

    positive("height", _MAX_SIZE)
    positive("width", _MAX_SIZE)
    positive("max_batch", _MAX_SIZE)
    backend = m.get("backend")
    if not isinstance(backend, str) or backend not in BACKEND_FILES:
        raise bad("backend", "one of " + ", ".join(repr(b) for b in BACKEND_FILES))
    if "precision" in m and not isinstance(m["precision"], str):
        raise bad("precision", "a string such as 'fp32'")

    # inputs: a list of {name, dtype, ...}; label-map graphs take the contract's names
    inputs = m.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
        raise bad("inputs", "a non-empty list of objects with a name and a dtype")
    names = [i.get("name") for i in inputs]
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise bad("inputs", "a list of inputs with distinct non-empty string names")
    from ..signature import KINDS  # torch-free

    for i in inputs:
        kind, dtype = i.get("kind"), i.get("dtype")
        if kind is not None and (not isinstance(kind, str) or kind not in KINDS):
            raise bad("inputs", f"inputs of a known kind ({', '.join(KINDS)}); input {i['name']!r} is not")
        want = KINDS[kind] if kind is not None else INPUT_DTYPES.get(i["name"])
        if (dtype is not None and not isinstance(dtype, str)) or (want is not None and dtype not in (None, want)):
            raise bad("inputs", f"inputs of the contract's dtypes; input {i['name']!r} must be {want}")
        if "shape" in i and not isinstance(i["shape"], list):
            raise bad("inputs", f"inputs whose shape is a list; input {i['name']!r} has none")
    signature = m.get("signature")
    if signature is not None:
        from ..errors import ConfigError
        from ..signature import Signature

        try:
            sig = Signature.from_dict(signature)
        except ConfigError as e:
            raise bad("signature", f"a valid signature ({e})") from None
        if sig.spatial == "fixed" and list(sig.size) != [m["height"], m["width"]]:
            raise bad("signature", f"a signature whose fixed size is height x width ({m['height']}x{m['width']})")
        if "labels" not in names and {i.name for i in sig.inputs} != set(names):
            raise bad("signature", f"a signature declaring the graph's inputs {names}")
    elif "labels" not in names or not set(names) <= set(INPUT_DTYPES):
        raise bad("inputs", f"a list of the contract's inputs ({', '.join(INPUT_DTYPES)}, labels among them)")

    positive("num_classes", _MAX_ID, optional="labels" not in names)
    positive("z_dim", _MAX_Z, optional="z" not in names or "labels" not in names)
    # spatial inputs are (batch, height, width[, 3]); a label-map graph's z is (batch, z_dim)
    per = {"labels": [m["height"], m["width"]], "instance": [m["height"], m["width"]]}
    per["image"] = [*per["labels"], 3]
    per["regions"] = per["labels"]
    for i in inputs:
        kind = i.get("kind") or (i["name"] if i["name"] in per else None)
        want = per.get(kind) if kind else None
        if i["name"] == "z" and "labels" in names and kind in (None, "latent"):
            want = [m.get("z_dim")]
        if "shape" in i and want is not None and i["shape"] != ["batch", *want]:
            raise bad(
                "inputs",
                f"inputs whose shapes agree with height x width {m['height']}x{m['width']} and z_dim "
                f"{m.get('z_dim')}; {i['name']!r} is {i['shape']!r:.40}",
            )
    ids = m.get("label_ids")
    if ids is not None:
        if (
            not isinstance(ids, list)
            or not all(_is_int(i) and 0 <= i <= _MAX_ID for i in ids)
            or len(set(ids)) != len(ids)
            or len(ids) != m.get("num_classes")
        ):
            raise bad(
                "label_ids",
                f"null or a list of num_classes ({m.get('num_classes')!r:.20}) distinct ids in 0..{_MAX_ID}",
            )
    names_ = obj("class_names")
    if names_ is not None and not all(isinstance(v, str) for v in names_.values()):
        raise bad("class_names", "null or an object mapping ids to names (strings)")
    if names_ and "labels" in names:  # named ids must be ones the model takes
        taken = {str(i) for i in ids} if ids is not None else None
        if not all(
            k in taken if taken is not None else k.isdecimal() and len(k) <= 10 and int(k) < m["num_classes"]
            for k in names_
        ):
            raise bad("class_names", "an object naming ids the model takes (label_ids, or 0..num_classes-1)")

    files = m.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and _safe_relative(k) and isinstance(v, str) and len(v) == 64 for k, v in files.items()
    ):
        raise bad("files", "an object mapping relative paths inside the artifact to SHA-256 hex digests")
    missing = [f for f in BACKEND_FILES[backend] if f not in files]
    if missing:
        raise bad("files", f"a listing of the {backend} files ({', '.join(BACKEND_FILES[backend])})")
    style = obj("style_encoder")
    if style is not None:
        # a VAE's encoder takes one image (`input`); SEAN's the image and its regions (`inputs`: style, labels, ...)
        one, many = style.get("input"), style.get("inputs")
        ok_inputs = (isinstance(one, str) and bool(one) and many is None) or (
            one is None
            and isinstance(many, list)
            and many
            and all(isinstance(n, str) and n for n in many)
            and len(set(many)) == len(many)
            and set(many[1:]) <= {"labels", "instance"}
        )
        ok_file = isinstance(style.get("file"), str) and style["file"] in files
        if not (ok_file and ok_inputs and isinstance(style.get("output"), str)):
            raise bad(
                "style_encoder",
                "null or {file (one of the listed files), input (a name) or inputs ([image, 'labels'"
                "(, 'instance')]), output}",
            )
    obj("output")
    obj("config")
    target = obj("target")
    if target is not None and not isinstance(target.get("gpu_arch", ""), (str, type(None))):
        raise bad("target", "an object whose gpu_arch is a string")
    libraries = obj("libraries")
    if libraries is not None and not all(
        isinstance(k, str) and (v is None or isinstance(v, str) and re.match(r"[0-9]+(?:$|[.+])", v))
        for k, v in libraries.items()
    ):
        raise bad("libraries", "an object mapping library names to version strings such as '1.20.1' (or null)")


def _safe_relative(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and "\\" not in name and not p.is_absolute() and ".." not in p.parts and ":" not in name


def installed_version(module: str) -> str | None:
    from importlib import metadata

    names = {"tensorrt-rtx": ["tensorrt-rtx", "tensorrt_rtx"], "tensorrt": ["tensorrt"]}.get(module, [module])
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_export_target(out: str | os.PathLike) -> Path:
    """Refuse an export directory whose replacement would delete something rtgan did not write.

    An artifact is written beside `out` and renamed over it, so `out` may be new, empty, or an
    earlier artifact holding only the files its manifest lists; anything else is the user's.
    """
    try:
        cwd = Path.cwd()
    except FileNotFoundError:  # the working directory was deleted: no folder can hold it
        cwd = None
    path = Path(out).expanduser()
    path = Path(os.path.normpath(path if path.is_absolute() or cwd is None else cwd / path))  # "a/.." is cwd
    if cwd is not None and (path == cwd or path in cwd.parents):
        raise ArtifactError(
            f"--out {out} is the current folder (or holds it); an export replaces its --out folder, "
            f"so name a new one, e.g. --out {Path(out) / 'engine'}"
        )
    if path.exists() and not path.is_dir():
        raise ArtifactError(f"--out {out} is a file; name a folder for the artifact")
    if not path.is_dir() or not any(path.iterdir()):
        return path
    ours = {MANIFEST}
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("format") == MANIFEST_FORMAT:
            files = set(manifest.get("files", {}))
            ours |= files | {parent.as_posix() for f in files for parent in Path(f).parents if parent != Path(".")}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        manifest = None
    found = {p.relative_to(path).as_posix() for p in path.rglob("*")}
    foreign = sorted(found - ours) if manifest is not None else sorted(found)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ArtifactError(
            f"--out {out} holds files that are not part of an rtgan artifact ({shown}); an export "
            f"replaces its --out folder, so give a new or empty one, e.g. --out {Path(out) / 'engine'}"
        )
    return path
