"""A scoring job: its settings, the model it runs, and the output folder's job manifest and lock.

The manifest (``_sentilite_job.json``) records what the first run read:
each input file's fingerprint, the model file's sha256 and the settings
that decide the output. A restart with anything else is refused, because
its parts would not fit with the ones already written.
"""
from __future__ import annotations

import fcntl
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from sentilite import __version__
from sentilite.shared.errors import ModelFileError
from sentilite.shared.files import atomic_write_json, parse_json, sha256_file

from .errors import JobChangedError, ScoreOutputError
from .outputs import AnswerColumns

JOB_FILE = "_sentilite_job.json"
SUMMARY_FILE = "_sentilite_summary.json"
SUCCESS_FILE = "_SUCCESS"
LOCK_FILE = ".sentilite-score.lock"
JOB_VERSION = 1


@dataclass(frozen=True)
class ModelSpec:
    """The one model file a job scores with, pinned so every worker loads exactly that file."""

    path: str  # the package folder or file the user named, absolute
    file: str  # the file that is run, absolute
    format: str
    precision: str | None
    backend: str
    sha256: str
    labels: tuple[str, ...]  # the model's labels, in the order of its probabilities

    def __post_init__(self) -> None:
        AnswerColumns.for_labels(self.labels, self.file)  # two labels of one column name: refused before any work

    @property
    def columns(self) -> AnswerColumns:
        """The output's answer columns for these labels (refused when two labels get one column name)."""
        return AnswerColumns.for_labels(self.labels, self.file)

    @property
    def is_package(self) -> bool:
        return Path(self.path).is_dir()

    def load(self, path: str | None = None, num_threads: int = 1):
        """Load the pinned file (from ``path``, a copy of the package or file, if given)."""
        from sentilite.runtime import load

        where = path or self.path
        if Path(where).is_dir():
            model = load(where, format=self.format, precision=self.precision, backend=self.backend,
                         num_threads=num_threads)
        else:
            model = load(where, backend=self.backend, num_threads=num_threads)
        if Path(model.info["file"]).name != Path(self.file).name or model.info["backend"] != self.backend:
            raise ModelFileError(f"{where}: loaded {model.info['file']} on {model.info['backend']}, "
                                 f"expected {self.file} on {self.backend}")
        return model

    def describe(self) -> dict:
        return {"path": self.path, "file": Path(self.file).name, "format": self.format,
                "precision": self.precision, "backend": self.backend, "sha256": self.sha256}


def resolve_model(path: str, format: str | None = None, precision: str | None = None,
                  backend: str | None = None, load_here: bool = True):
    """(ModelSpec, model): the file `load` picks, checked and loaded once here, with its sha256.

    Without ``load_here``, a package folder is only read (manifest, no engine)
    and the model is None: worker processes load and check it themselves, so
    their start-up is not queued behind a load in the main process.
    """
    from sentilite.runtime import load

    if not load_here and Path(path).is_dir():
        return _spec_from_manifest(Path(path), format, precision, backend), None
    model = load(path, format=format, precision=precision, backend=backend, num_threads=1)
    info = model.info
    spec = ModelSpec(path=str(Path(path).resolve()), file=str(Path(info["file"]).resolve()), format=info["format"],
                     precision=info.get("precision"), backend=info["backend"],
                     sha256=sha256_file(info["file"]), labels=tuple(model.labels))
    return spec, model


def _spec_from_manifest(folder: Path, format, precision, backend) -> ModelSpec:
    from sentilite.runtime.backends import available_backends
    from sentilite.runtime.model import MANIFEST_FILE, choose_artifact, read_manifest
    from sentilite.shared.files import confined_path

    manifest = read_manifest(folder)
    artifact = choose_artifact(manifest, folder, format, precision, backend)
    file = confined_path(folder, artifact["file"], str(folder / MANIFEST_FILE), ModelFileError)
    engines = [backend] if backend else available_backends(artifact["format"])
    if not engines:
        from sentilite.shared.errors import BackendUnavailableError

        raise BackendUnavailableError(f"{file}: no installed backend runs {artifact['format']} files")
    return ModelSpec(path=str(folder.resolve()), file=str(file.resolve()), format=artifact["format"],
                     precision=artifact.get("precision"), backend=engines[0], sha256=artifact["sha256"],
                     labels=tuple(manifest["labels"]))


@dataclass(frozen=True)
class Settings:
    """What decides the output: the same input with other settings gives other parts."""

    engine: str
    input_format: str
    text_column: str
    id_column: str | None
    output_format: str
    part_rows: int


def job_record(settings: Settings, inputs: list[dict], model: ModelSpec) -> dict:
    return {"format_version": JOB_VERSION, "sentilite_version": __version__, "settings": asdict(settings),
            "inputs": inputs, "model": model.describe()}


def differences(old: dict, new: dict) -> list[str]:
    """What changed between the run that started a folder and this one, in words."""
    found = []
    for key, value in new["settings"].items():
        if old.get("settings", {}).get(key) != value:
            found.append(f"setting {key}: {old.get('settings', {}).get(key)!r} then, {value!r} now")
    old_model, new_model = old.get("model", {}), new["model"]
    for key in ("sha256", "format", "precision", "backend"):
        if old_model.get(key) != new_model.get(key):
            found.append(f"model {key}: {old_model.get(key)!r} then, {new_model.get(key)!r} now")
    old_inputs = {i["path"]: i for i in old.get("inputs", [])}
    new_inputs = {i["path"]: i for i in new["inputs"]}
    for path in sorted(set(old_inputs) | set(new_inputs)):
        if path not in new_inputs:
            found.append(f"input {path}: gone")
        elif path not in old_inputs:
            found.append(f"input {path}: new")
        elif old_inputs[path] != new_inputs[path]:
            found.append(f"input {path}: changed ({old_inputs[path].get('bytes'):,} bytes then, "
                         f"{new_inputs[path]['bytes']:,} now)")
    if [i["path"] for i in old.get("inputs", [])] != [i["path"] for i in new["inputs"]] and not found:
        found.append("input files: listed in another order")
    return found


def check_restart(out: str | Path, old: dict, new: dict) -> None:
    found = differences(old, new)
    if found:
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise JobChangedError(
            f"{out} was started by a run with other input, model or settings: " + "; ".join(found[:5]) + more +
            f". Score into a new --out folder, or delete {out} to start over.")


def read_job(path: Path) -> dict:
    return parse_json(path.read_bytes(), str(path), ScoreOutputError)


class OutputFolder:
    """The output folder of a one-machine run, held with a lock for the run's lifetime.

    The lock (flock on a hidden file) is released by the kernel when the
    process dies, so a killed run never blocks its restart.
    """

    def __init__(self, out: Path):
        self.out = out
        self._lock = None

    def open(self, record: dict) -> bool:
        """Lock, check or write the job manifest, remove half-written files; True when resuming."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise ScoreOutputError(f"{out}: exists and is not a folder; --out names a folder of parts")
        out.mkdir(parents=True, exist_ok=True)
        self._lock = open(out / LOCK_FILE, "a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise ScoreOutputError(f"{out}: another `sentilite score` is writing to this folder") from None
        job = out / JOB_FILE
        if job.exists():
            check_restart(out, read_job(job), record)
            resumed = True
        else:
            ours = [p.name for p in out.iterdir() if not p.name.startswith(".")]
            if ours:
                raise ScoreOutputError(f"{out}: the folder is not empty and holds no {JOB_FILE} "
                                       f"(e.g. {ours[0]}); choose a new or empty --out folder")
            atomic_write_json(job, record)
            resumed = False
        self.remove_partials()
        return resumed

    def remove_partials(self) -> None:
        for partial in self.out.glob(".*.partial"):
            try:
                partial.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
