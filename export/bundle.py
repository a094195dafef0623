"""`sentilite bundle PACKAGE_DIR` (`make bundle`): a `make export` package's runtime files, copied into the install.

The wheel ships only what a runtime needs (the int8 TFLite and dynamic-int8 ONNX files and the tokenizer),
with the export's manifest restricted to them: every entry is kept whole, so the figures the package reports
are the export's own, and a fresh export can be compared with them entry by entry. The export records no
commit, so the commit of the tree it ran in is taken when bundling, and the manifest says so.
"""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sentilite.runtime.bundled import DEFAULT_MODEL, MODELS_DIR
from sentilite.runtime.model import MANIFEST_FILE, MAX_MODEL_BYTES, MAX_TOKENIZER_BYTES, read_manifest
from sentilite.shared.errors import ModelFileError, SentiliteError
from sentilite.shared.files import (atomic_write_json, confined_path, make_staging_dir, read_file_limited,
                                    sha256_bytes)

BUNDLED_FILES = ("model.int8.tflite", "model.dynamic-int8.onnx")
COMMIT_AT_BUNDLE_TIME = ("git rev-parse HEAD of the tree holding the export, taken at bundle time "
                         "(the export records no commit)")
COMMIT_GIVEN = "given to `sentilite bundle --commit`"


class BundleError(SentiliteError, RuntimeError):
    """The bundle's provenance cannot be recorded (no commit to name)."""


def bundle(package_dir: str | os.PathLike, out: str | os.PathLike | None = None,
           files: Sequence[str] = BUNDLED_FILES, *, name: str = DEFAULT_MODEL, commit: str | None = None,
           date: str | None = None) -> dict:
    """Copy ``files`` and the tokenizer of an exported package into ``out``; returns the manifest written there.

    Every file is checked against the export's manifest before it is copied.
    ``out`` (default: the bundled model ``name`` of this package) is replaced
    whole, through a staging folder, so it holds exactly the bundle and a
    failure leaves the previous one. ``commit`` defaults to the commit of the
    git tree holding ``package_dir``; ``date`` to now, in UTC.
    """
    source = Path(package_dir)
    out = Path(out) if out is not None else MODELS_DIR / name
    manifest_path = source / MANIFEST_FILE
    manifest = read_manifest(source)
    by_file = {a["file"]: a for a in manifest["artifacts"]}
    files = list(dict.fromkeys(files))
    missing = [f for f in files if f not in by_file]
    if not files or missing:
        raise ModelFileError(f"{manifest_path}: no {missing or 'files chosen'} to bundle; it holds {sorted(by_file)}")
    tokenizer = dict(manifest["tokenizer"])
    tokenizer_name = tokenizer.get("file", "tokenizer.json")
    payload = {tokenizer_name: _checked(source, tokenizer_name, None, tokenizer["sha256"], MAX_TOKENIZER_BYTES)}
    for file in files:
        payload[file] = _checked(source, file, by_file[file]["bytes"], by_file[file]["sha256"], MAX_MODEL_BYTES)

    provenance = {"name": name, "files": files, "exported_files": sorted(by_file),
                  "export_manifest_sha256": sha256_bytes(manifest_path.read_bytes())}
    if commit is None:
        provenance.update(commit=_git_commit(source), commit_source=COMMIT_AT_BUNDLE_TIME,
                          tree_clean=_git_tree_clean(source))
    else:
        provenance.update(commit=commit, commit_source=COMMIT_GIVEN)
    provenance["date"] = date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    bundled = {k: v for k, v in manifest.items() if k not in ("artifacts", "bundle")}
    bundled["tokenizer"] = tokenizer
    bundled["artifacts"] = [by_file[f] for f in files]
    bundled["bundle"] = provenance

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging_dir(out)
    try:
        for file, content in payload.items():
            (staging / file).write_bytes(content)
        atomic_write_json(staging / MANIFEST_FILE, bundled)
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return bundled


def _checked(folder: Path, file: str, size: int | None, sha256: str, limit: int) -> bytes:
    path = confined_path(folder, file, str(folder / MANIFEST_FILE), ModelFileError)
    content = read_file_limited(path, limit, ModelFileError)
    if (size is not None and len(content) != size) or sha256_bytes(content) != sha256:
        raise ModelFileError(f"{path}: size or sha256 does not match {folder / MANIFEST_FILE} (damaged or replaced "
                             "file); run the export again")
    return content


def _swap_in(staging: Path, out: Path) -> None:
    """Put the staging folder in place of ``out``; the old folder is removed only once the new one is there."""
    if not out.exists():
        os.replace(staging, out)
        return
    retired = make_staging_dir(out)
    os.replace(out, retired / out.name)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(retired / out.name, out)
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def _git(folder: Path, *args: str) -> str:
    try:
        result = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BundleError(f"{folder}: cannot run git ({exc}); give the commit the model was trained from with "
                          "--commit") from None
    if result.returncode != 0:
        raise BundleError(f"{folder}: not in a git tree ({result.stderr.strip()[:200]}); give the commit the model "
                          "was trained from with --commit")
    return result.stdout


def _git_commit(folder: Path) -> str:
    return _git(folder, "rev-parse", "HEAD").strip()


def _git_tree_clean(folder: Path) -> bool:
    """No tracked file differs from the commit (untracked files, artifacts among them, do not count)."""
    return not _git(folder, "status", "--porcelain", "--untracked-files=no").strip()
