"""Safe file I/O shared by every part.

Writes are atomic (a reader never sees half a file, a failure leaves the old
one). Reads of anything that came from outside treat the bytes as hostile:
sizes are capped before parsing, JSON nesting errors and zlib bombs become
the caller's own error type, never RecursionError, MemoryError or a hang.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Caps for files and embedded blobs that sentilite itself writes; real ones are far smaller
# (a 20,000-word tokenizer.json is ~0.4 MB, a manifest ~30 KB).
MAX_JSON_BYTES = 64 << 20
MAX_DECOMPRESSED_BYTES = 64 << 20
# Nesting a sentilite document never comes near (a manifest is ~5 levels deep).
MAX_JSON_DEPTH = 64


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Run ``write(handle)`` on a temporary sibling file, then rename it over ``path``.

    A reader never sees half a file, and a failure (or a kill) leaves the old
    one and no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_staging_dir(final: Path) -> Path:
    """A temporary sibling folder of ``final`` with the usual permissions."""
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    os.chmod(staging, 0o777 & ~current_umask())
    return staging


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_json(data: bytes | str, source: str, error: type[Exception], max_bytes: int = MAX_JSON_BYTES,
               max_depth: int = MAX_JSON_DEPTH):
    """json.loads with caps on size and nesting; every failure is ``error`` naming ``source``.

    Deep nesting makes the decoder raise RecursionError after ~1,000 levels
    (bounded time and memory); it is reported like any other malformed file.
    A document that parses is then held to ``max_depth`` levels, so code
    that later walks, compares or prints a value (repr of a 900-level list
    raises RecursionError too) never meets a deep one. Integers of more than
    4,300 digits (Python's limit) are malformed JSON here, not a ValueError.
    """
    if len(data) > max_bytes:
        raise error(f"{source}: {len(data):,} bytes of JSON is over the {max_bytes:,}-byte limit")
    try:
        value = json.loads(data)
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not valid JSON ({exc})") from None
    except ValueError as exc:  # JSONDecodeError, and the integer-digits limit
        raise error(f"{source}: not valid JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply") from None
    except MemoryError:
        raise error(f"{source}: JSON too large to parse") from None
    if _json_depth(value, max_depth) > max_depth:
        raise error(f"{source}: JSON nested more than {max_depth} levels deep")
    return value


def _json_depth(value, limit: int) -> int:
    """Nesting depth of a parsed JSON value, without recursion; stops counting past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest if isinstance(value, (dict, list)) else 0


def decompress_limited(data: bytes, source: str, error: type[Exception],
                       max_bytes: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """zlib-decompress at most ``max_bytes``; a bomb is refused after that much work, not after all of it."""
    decompressor = zlib.decompressobj()
    try:
        out = decompressor.decompress(data, max_bytes)
    except zlib.error as exc:
        raise error(f"{source}: corrupt compressed data ({exc})") from None
    if decompressor.unconsumed_tail or (not decompressor.eof and decompressor.decompress(b"", 1)):
        raise error(f"{source}: compressed data expands beyond the {max_bytes:,}-byte limit")
    if not decompressor.eof:
        raise error(f"{source}: compressed data is truncated")
    return out


def confined_path(folder: Path, name, source: str, error: type[Exception]) -> Path:
    """``folder / name`` for a plain file name from a manifest; anything that could leave the folder is refused.

    A name must be one plain path component. When the file exists it must be
    a regular file whose real path (links followed) is in the folder: a link
    to another place, a FIFO (a read would block forever) or a device
    (/dev/zero never ends) is refused before anything reads it.
    """
    shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
    if not isinstance(name, str) or not name or "\x00" in name or len(name.encode("utf-8", "replace")) > 255:
        raise error(f"{source}: file entry {shown} is not a file name")
    candidate = Path(name)
    if candidate.is_absolute() or candidate.drive or any(part in ("..", ".", "") for part in candidate.parts) \
            or len(candidate.parts) != 1 or "\\" in name or name in (".", ".."):
        raise error(f"{source}: file entry {shown} must name a file inside the package folder")
    path = folder / candidate
    if os.path.lexists(path):
        try:
            real, home = path.resolve(strict=True), Path(folder).resolve(strict=True)
            mode = real.stat().st_mode
        except (OSError, RuntimeError) as exc:  # a dangling or looping link
            raise error(f"{source}: file entry {shown} cannot be resolved ({exc.__class__.__name__})") from None
        if real.parent != home:
            raise error(f"{source}: file entry {shown} links outside the package folder")
        if not stat.S_ISREG(mode):
            raise error(f"{source}: file entry {shown} is not a regular file")
    return path


def read_file_limited(path: str | os.PathLike, limit: int, error: type[Exception], *, kind: str = "file",
                      missing: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is ``error`` naming the path.

    A FIFO or device is refused before it is opened (a read could block or
    never end), and at most ``limit + 1`` bytes are read, so a file that
    grows while it is read cannot exhaust memory.
    """
    path = Path(path)
    try:
        status = path.stat()
        if stat.S_ISDIR(status.st_mode):
            raise error(f"{path}: is a folder, expected a {kind}")
        if not stat.S_ISREG(status.st_mode):
            raise error(f"{path}: is not a regular file")
        if status.st_size > limit:
            raise error(f"{path}: {status.st_size:,} bytes is over the {limit:,}-byte limit for a {kind}")
        with open(path, "rb") as handle:
            # read(n) allocates n bytes up front: ask for what the file holds, plus one to see it grow
            data = handle.read(status.st_size + 1)
    except FileNotFoundError:
        raise error(missing or f"{path}: {kind} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > limit:
        raise error(f"{path}: over the {limit:,}-byte limit for a {kind}")
    if not data:
        raise error(f"{path}: {kind} is empty")
    return data
