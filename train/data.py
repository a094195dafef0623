"""The texts a model is trained on: IMDB (find it, fetch it safely, read it), or the user's own labeled files.

Reads IMDB's official layout ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``
from a folder or straight from a ``.tar.gz``. The 25,000 test reviews are only
ever returned as the test split; validation comes from the training reviews.

A user's files (``train.readers``) are read by ``load_training_data`` from
what config.json's ``data`` says, so ``sentilite export`` reads the same
splits again; ``profile_texts`` measures them for ``config.sized_for_data``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentilite.runtime.architecture import BINARY_LABELS
from sentilite.runtime.tokenizer import TokenizerConfig
from sentilite.shared.files import sha256_file

from .errors import ChecksumError, DatasetError
from .readers import BadRow, LabeledTexts

if TYPE_CHECKING:
    from .config import DataConfig, DataProfile, RunConfig

IMDB_ARCHIVE_NAME = "aclImdb_v1.tar.gz"
IMDB_BASE_URL = "https://ai.stanford.edu/~amaas/data/sentiment/"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
# Overrides, for mirrors and tests: base URL (the archive name is appended) and checksum.
ENV_DATA = "IMDB_DATA"
ENV_BASE_URL = "SENTILITE_IMDB_BASE_URL"
ENV_SHA256 = "SENTILITE_IMDB_SHA256"

SPLITS = ("train", "test")
CLASSES = ("neg", "pos")  # label 0, label 1
REVIEWS_PER_CLASS = 12_500  # in each split of the official archive
# Extraction caps: the official archive unpacks to ~0.5 GB in ~100,000 files (with train/unsup/).
MAX_EXTRACT_BYTES = 2 << 30
MAX_EXTRACT_MEMBERS = 200_000
# A long member name or pax header: tarfile reads it whole; real ones are a few hundred bytes.
MAX_TAR_HEADER_BYTES = 1 << 20
# One review; the longest in the archive is ~14 KB.
MAX_REVIEW_BYTES = 1 << 20
log = logging.getLogger("sentilite.data")
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


@dataclass(frozen=True)
class Reviews:
    """One split: texts with labels (indices into TrainingData.label_names; IMDB: 1 = positive), in a stable order.

    IMDB's reviews carry their star ratings and file-name ids; a user's
    texts carry neither (None).
    """

    texts: list[str]
    labels: np.ndarray  # int32, 0 = negative, 1 = positive
    ratings: np.ndarray | None = None  # int32, 1..10
    # The number in the file name. One movie's reviews have consecutive ids within a class
    # folder (train/pos 10-21 are nearly all one film), which movie_disjoint_split relies on.
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index) -> "Reviews":
        index = np.asarray(index, dtype=np.int64)
        return Reviews([self.texts[i] for i in index], self.labels[index],
                       None if self.ratings is None else self.ratings[index],
                       None if self.ids is None else self.ids[index])


@dataclass(frozen=True)
class TrainingData:
    """The texts a model is trained and tested on: IMDB's two folders, or a user's labeled files.

    ``labels`` of every split index ``label_names``. ``validation`` is None
    for IMDB only, whose movie-disjoint validation split training makes off
    ``train`` (``fit.split_training_reviews``); a user's data always has it:
    the validation file, or a seeded stratified split of the training file
    (``load_training_data``), and ``train`` is then what is left to fit on.
    ``split_note`` says how each split was made, for the log and
    metrics.json; ``summary`` (a user's data) the rows read and skipped per
    file. ``imdb``: the IMDB set, which gets its movie-disjoint validation
    split and its short-text and negation checks.
    """

    train: Reviews
    test: Reviews
    source: str
    complete: bool = True  # False when read with allow_incomplete from a copy missing reviews
    validation: Reviews | None = None
    label_names: tuple[str, ...] = BINARY_LABELS
    split_note: str = ""
    imdb: bool = True
    summary: DataSummary | None = None

    def describe(self) -> str:
        if not self.imdb:
            validation = 0 if self.validation is None else len(self.validation)
            return (f"{len(self.train):,} train, {validation:,} validation and {len(self.test):,} test texts, "
                    f"{len(self.label_names)} labels")
        counts = f"{len(self.train):,} train and {len(self.test):,} test reviews"
        return counts if self.complete else counts + " (INCOMPLETE copy: fewer than the official 25,000 each)"


# -- where the data is ----------------------------------------------------------
def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sentilite"


def resolve_data(data: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """--data, else $IMDB_DATA, else the cache (downloading the official archive once)."""
    if data is None:
        data = os.environ.get(ENV_DATA) or None
    if data is not None:
        path = Path(data).expanduser()
        if not path.exists():
            raise DatasetError(f"{path}: IMDB data not found (give a folder holding aclImdb/ or a .tar.gz of it)")
        return path
    cache = cache_dir()
    extracted = cache / "aclImdb"
    if extracted.is_dir():
        return extracted
    archive = download_imdb(cache, progress=progress)
    return extract_archive(archive, cache)


# -- download -------------------------------------------------------------------
def download_imdb(
    dest_dir: str | os.PathLike,
    base_url: str | None = None,
    sha256: str | None = None,
    *,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch the archive into dest_dir, verify its sha256, and only then give it its name."""
    base_url = base_url or os.environ.get(ENV_BASE_URL) or IMDB_BASE_URL
    expected = (sha256 or os.environ.get(ENV_SHA256) or IMDB_SHA256).lower()
    url = base_url.rstrip("/") + "/" + IMDB_ARCHIVE_NAME
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / IMDB_ARCHIVE_NAME
    if final.is_file() and sha256_file(final) == expected:
        return final
    fd, tmp = tempfile.mkstemp(prefix=f".{IMDB_ARCHIVE_NAME}.", suffix=".partial", dir=dest_dir)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DatasetError(f"{url}: download failed ({reason})") from None
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                bar = _progress_bar(total, f"downloading {IMDB_ARCHIVE_NAME}", progress)
                try:
                    while True:
                        chunk = response.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
                except (OSError, urllib.error.URLError) as exc:
                    raise DatasetError(f"{url}: download interrupted ({exc})") from None
                finally:
                    bar.close()
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected:
            raise ChecksumError(f"{url}: sha256 mismatch: expected {expected}, got {actual}; the file was discarded")
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final


def extract_archive(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """Extract aclImdb/ from the archive into dest_dir, refusing anything unsafe.

    Only regular files and folders inside the target are accepted: absolute
    names, ``..``, links and devices fail the whole extraction, and so do
    more than MAX_EXTRACT_MEMBERS members, more than MAX_EXTRACT_BYTES of
    content, or a long-name/pax header over MAX_TAR_HEADER_BYTES (tarfile
    would read it whole into memory). Where the standard library has
    extraction filters (3.12, 3.11.4+, 3.10.12+), members are extracted with
    ``filter="data"``, which checks each one once more. A failed extraction
    leaves nothing behind (it happens in a temporary folder).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / "aclImdb"
    staging = Path(tempfile.mkdtemp(prefix=".aclImdb.", suffix=".partial", dir=dest_dir))
    try:
        with _open_tar(archive) as tar:
            try:
                for member in _capped_members(tar, archive):
                    _check_member(member, archive)
                    _extract_member(tar, member, staging, archive)
            except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
                raise DatasetError(f"{archive}: corrupt or truncated archive ({exc})") from None
        extracted = staging / "aclImdb"
        if not extracted.is_dir():
            raise DatasetError(f"{archive}: the archive holds no aclImdb/ folder")
        _check_layout(extracted)
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _capped_members(tar: tarfile.TarFile, archive: Path):
    """The archive's members, one at a time, stopping at the member-count and total-size caps."""
    members, total = 0, 0
    for member in tar:
        members += 1
        total += max(member.size, 0)
        if members > MAX_EXTRACT_MEMBERS:
            raise DatasetError(f"{archive}: more than {MAX_EXTRACT_MEMBERS:,} members: not the IMDB archive, "
                               f"refusing it")
        if total > MAX_EXTRACT_BYTES:
            raise DatasetError(f"{archive}: more than {MAX_EXTRACT_BYTES:,} bytes of content: not the IMDB "
                               f"archive, refusing it")
        yield member


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path, archive: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        try:
            tar.extract(member, staging, filter="data")
        except tarfile.FilterError as exc:
            raise DatasetError(f"{archive}: refusing to extract {member.name!r} ({exc})") from None
        return
    # No extraction filters (Python < 3.11.4): _check_member has refused everything but plain
    # files and folders inside the target; copy the content without the archive's modes.
    dest = staging / member.name
    if member.isdir():
        dest.mkdir(parents=True, exist_ok=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tar.extractfile(member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    if not (member.isfile() or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "special file"
        raise DatasetError(f"{archive}: refusing to extract {kind} {name!r}")
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts or (parts and ":" in parts[0]):
        raise DatasetError(f"{archive}: refusing to extract {name!r}: it escapes the target folder")


class _OversizedHeader(tarfile.TarError):
    """Not a ReadError: tarfile.open would take that for a wrong compression and try the next one."""


class _CappedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses long-name and pax headers over MAX_TAR_HEADER_BYTES.

    tarfile reads such a header's whole content into memory before it
    yields the member it describes, so a small gzip of one huge pax header
    would otherwise cost gigabytes before any cap above could see it.
    """

    def _proc_member(self, tarfile_):
        if self.type in _NAME_HEADER_TYPES and self.size > MAX_TAR_HEADER_BYTES:
            raise _OversizedHeader(f"a tar header of {self.size:,} bytes (over {MAX_TAR_HEADER_BYTES:,})")
        return super()._proc_member(tarfile_)


_NAME_HEADER_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                      tarfile.SOLARIS_XHDTYPE)


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, mode="r:*", tarinfo=_CappedTarInfo)
    except FileNotFoundError:
        raise DatasetError(f"{archive}: archive not found") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(f"{archive}: not a readable tar archive ({exc})") from None


class _NullBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total, desc, enabled):
    if not enabled:
        return _NullBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NullBar()
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr)


# -- reading --------------------------------------------------------------------
def load_imdb(data: str | os.PathLike | None = None, *, progress: bool = True,
              allow_incomplete: bool = False) -> TrainingData:
    """Both splits of IMDB from a folder, a .tar.gz, $IMDB_DATA or the cache.

    A copy with fewer than 12,500 reviews in any class of either split is
    refused with the counts it has, unless ``allow_incomplete``: then it is
    read, marked incomplete, and every count printed is the real one.
    """
    path = resolve_data(data, progress=progress)
    if path.is_dir():
        rows = _read_folder(_find_root(path))
    else:
        rows = _read_tar(path)
    counts = {(split, cls): 0 for split in SPLITS for cls in CLASSES}
    for row in rows:
        counts[row[0], row[1]] += 1
    short = {k: n for k, n in counts.items() if n < REVIEWS_PER_CLASS}
    if any(n == 0 for n in counts.values()) or (short and not allow_incomplete):
        found = ", ".join(f"{split}/{cls} {n:,}" for (split, cls), n in counts.items())
        hint = "" if any(n == 0 for n in counts.values()) else " (pass --allow-incomplete to use it anyway)"
        raise DatasetError(f"{path}: incomplete IMDB copy: expected {REVIEWS_PER_CLASS:,} reviews in each of "
                           f"train/test x neg/pos, found {found}{hint}")
    if short:
        log.warning("%s: incomplete IMDB copy, using %s", path,
                    ", ".join(f"{s}/{c} {n:,}" for (s, c), n in counts.items()))
    splits = {}
    for split in SPLITS:
        chosen = sorted((r for r in rows if r[0] == split), key=lambda r: (r[1], r[2]))
        splits[split] = Reviews(
            texts=[r[4] for r in chosen],
            labels=np.array([CLASSES.index(r[1]) for r in chosen], dtype=np.int32),
            ratings=np.array([r[3] for r in chosen], dtype=np.int32),
            ids=np.array([r[2] for r in chosen], dtype=np.int32),
        )
    return TrainingData(train=splits["train"], test=splits["test"], source=str(path), complete=not short)


def _find_root(path: Path) -> Path:
    for candidate in (path / "aclImdb", path):
        if (candidate / "train").is_dir() or (candidate / "test").is_dir():
            _check_layout(candidate)
            return candidate
    raise DatasetError(f"{path}: expected an aclImdb/ folder with train/ and test/ inside")


def _check_layout(root: Path) -> None:
    for split in SPLITS:
        for cls in CLASSES:
            folder = root / split / cls
            if not folder.is_dir():
                raise DatasetError(f"{root}: missing folder {split}/{cls}/ (not the aclImdb layout)")


def _read_folder(root: Path) -> list[tuple]:
    rows = []
    for split in SPLITS:
        for cls in CLASSES:
            for file in (root / split / cls).iterdir():
                match = _MEMBER.search("aclImdb/" + f"{split}/{cls}/{file.name}")
                if not match or not file.is_file():
                    continue
                text = file.read_bytes().decode("utf-8", errors="replace")
                rows.append((split, cls, int(match.group(3)), int(match.group(4)), text))
    return rows


def _read_tar(archive: Path) -> list[tuple]:
    rows = []
    with _open_tar(archive) as tar:
        try:
            for member in _capped_members(tar, archive):
                match = _MEMBER.search(member.name)
                if not match or not member.isfile():
                    continue
                if member.size > MAX_REVIEW_BYTES:
                    raise DatasetError(f"{archive}: {member.name} is {member.size:,} bytes; an IMDB review is "
                                       f"under {MAX_REVIEW_BYTES:,}")
                handle = tar.extractfile(member)
                text = handle.read().decode("utf-8", errors="replace")
                split, cls, rid, rating = match.groups()
                rows.append((split, cls, int(rid), int(rating), text))
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise DatasetError(f"{archive}: corrupt or truncated archive ({exc})") from None
    if not rows:
        raise DatasetError(f"{archive}: no aclImdb/{{train,test}}/{{pos,neg}}/<id>_<rating>.txt files inside")
    return rows


def _check_fraction(validation_fraction: float) -> None:
    if not 0.0 < validation_fraction < 1.0:
        raise DatasetError(f"validation fraction must be between 0 and 1, got {validation_fraction}")


def train_validation_split(labels: np.ndarray, validation_fraction: float, seed: int):
    """Stratified, seeded indices (train_idx, val_idx) into the training reviews."""
    _check_fraction(validation_fraction)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(len(idx) * validation_fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    train_idx = np.concatenate(train_idx)
    val_idx = np.concatenate(val_idx)
    return rng.permutation(train_idx), rng.permutation(val_idx)


def movie_disjoint_split(labels: np.ndarray, ids: np.ndarray, validation_fraction: float, seed: int,
                         block: int = 250):
    """Stratified, seeded (train_idx, val_idx) of whole blocks of consecutive review ids.

    A random split puts other reviews of the same movies in training, so the
    validation score rewards what a model learned about those movies. Blocks
    of 250 consecutive ids keep most validation movies out of training.
    """
    _check_fraction(validation_fraction)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[np.argsort(ids[idx], kind="stable")]
        size = max(1, min(block, len(idx) // 20))  # small subsets: at least ~20 blocks to choose from
        blocks = [idx[i: i + size] for i in range(0, len(idx), size)]
        n_val = max(1, int(round(len(blocks) * validation_fraction)))
        chosen = set(rng.permutation(len(blocks))[:n_val].tolist())
        val_idx += [b for k, b in enumerate(blocks) if k in chosen]
        train_idx += [b for k, b in enumerate(blocks) if k not in chosen]
    return rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(val_idx))


def subset(reviews: Reviews, n: int, seed: int) -> Reviews:
    """A seeded, class-balanced subset of n reviews (for tests and quick runs)."""
    if n >= len(reviews):
        return reviews
    _, idx = train_validation_split(reviews.labels, n / len(reviews), seed)
    return reviews.take(np.sort(idx))


# -- a user's own labeled files ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileSummary:
    """One file as read: what was found in it, the rows kept and the rows --skip-bad-rows skipped."""

    role: str  # "train", "validation" or "test": what the file was given as
    path: str
    data_format: str
    text_column: str | int | None
    label_column: str | int | None
    rows: int
    skipped_by_reason: tuple[tuple[str, int], ...] = ()
    skipped_examples: tuple[BadRow, ...] = ()  # the first few

    @property
    def skipped_rows(self) -> int:
        return sum(n for _, n in self.skipped_by_reason)

    @classmethod
    def of(cls, role: str, texts: LabeledTexts) -> FileSummary:
        return cls(role, texts.source, texts.data_format, texts.text_column, texts.label_column, len(texts),
                   tuple(texts.skipped_counts.items()), texts.skipped_examples)

    def to_dict(self) -> dict:
        return {"role": self.role, "path": self.path, "data_format": self.data_format,
                "text_column": self.text_column, "label_column": self.label_column, "rows": self.rows,
                "skipped_rows": self.skipped_rows, "skipped_by_reason": dict(self.skipped_by_reason),
                "skipped_examples": [row.to_dict() for row in self.skipped_examples]}


@dataclass(frozen=True)
class DataSummary:
    """What a user's data was, for metrics.json (``to_dict``): the files read, the rows skipped, the splits made."""

    label_names: tuple[str, ...]
    files: tuple[FileSummary, ...]
    split_rows: tuple[tuple[str, tuple[int, ...]], ...]  # (split, rows per label in label order)
    split_note: str

    @property
    def skipped_rows(self) -> int:
        return sum(file.skipped_rows for file in self.files)

    def to_dict(self) -> dict:
        return {"label_names": list(self.label_names), "split_note": self.split_note,
                "splits": {split: {"rows": sum(counts),
                                   "class_counts": dict(zip(self.label_names, counts))}
                           for split, counts in self.split_rows},
                "skipped_rows": self.skipped_rows, "files": [file.to_dict() for file in self.files]}


@dataclass(frozen=True, eq=False)
class LabeledSplits:
    """A user's files as read, before validation is split off: ``pool`` is the training file less its test split.

    ``validation`` is None when no validation file was given.
    """

    pool: LabeledTexts
    validation: LabeledTexts | None
    test: LabeledTexts
    files: tuple[FileSummary, ...]
    test_note: str

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.pool.label_names


def read_labeled_splits(data_config: DataConfig) -> LabeledSplits:
    """Read the files ``data_config`` names; without a test file, split one off the training file (seeded, stratified).

    The label order is the training file's (``--labels``, else numeric, else
    sorted), and a validation or test file may hold no other label; it may
    lack one (a rare class).
    """
    from .readers import LabeledDataError, LabelSetError, read_labeled

    if data_config.imdb:
        raise LabeledDataError("read_labeled_splits reads a user's files; IMDB is read by load_imdb")
    options = dict(data_format=data_config.data_format, text_column=data_config.text_column,
                   label_column=data_config.label_column, encoding=data_config.encoding,
                   skip_bad_rows=data_config.skip_bad_rows)
    train = read_labeled(data_config.train, labels=data_config.labels, labels_source="--labels", **options)
    names = train.label_names
    train_name = Path(data_config.train).name
    files = [FileSummary.of("train", train)]
    given = {}
    for role in ("validation", "test"):
        path = getattr(data_config, role)
        if path is None:
            continue
        if Path(path).is_dir():
            extra = sorted(folder.name for folder in Path(path).iterdir()
                           if folder.is_dir() and folder.name not in names
                           and not folder.name.startswith((".", "__MACOSX")) and any(folder.glob("*.txt")))
            if extra:
                raise LabelSetError(f"{path}: sub-folder {extra[0]!r} is a label the training data ({train_name}) "
                                    f"does not have; its labels: {', '.join(map(repr, names))}")
        given[role] = read_labeled(path, labels=names, require_all_labels=False,
                                   labels_source=f"those of the training file {train_name}", **options)
        files.append(FileSummary.of(role, given[role]))
    for file in files:
        if file.skipped_rows:
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in file.skipped_by_reason)
            first = file.skipped_examples[0]
            log.warning("%s: skipped %s bad row%s (--skip-bad-rows): %s; the first: %s: %s", file.path,
                        f"{file.skipped_rows:,}", "" if file.skipped_rows == 1 else "s", reasons, first.location,
                        first.problem)
    if "test" in given:
        pool, test, test_note = train, given["test"], f"test: {Path(data_config.test).name} as given"
    else:
        pool, test = train.split(data_config.test_fraction, data_config.split_seed,
                                 holdout="test split (no --test-data given)")
        test_note = (f"test: {data_config.test_fraction:.0%} of {train_name}, stratified, "
                     f"seed {data_config.split_seed}")
    return LabeledSplits(pool, given.get("validation"), test, tuple(files), test_note)


def training_data(splits: LabeledSplits, run_config: RunConfig) -> TrainingData:
    """The splits training uses: without a validation file, a seeded stratified share of the pool is validation.

    The share and the seed are the training settings' (``validation_fraction``, ``seed``).
    """
    t, data = run_config.training, run_config.data
    train_name = Path(data.train).name
    test_given = data.test is not None
    if splits.validation is None:
        fit, validation = splits.pool.split(t.validation_fraction, t.seed,
                                            holdout="validation split (no --validation-data given)")
        validation_note = (f"validation: {t.validation_fraction:.0%} of {train_name}"
                           f"{'' if test_given else ' less its test split'}, stratified, seed {t.seed}")
    else:
        fit, validation = splits.pool, splits.validation
        validation_note = f"validation: {Path(data.validation).name} as given"
    held = [name for name, split_off in (("validation", splits.validation is None), ("test", not test_given))
            if split_off]
    train_note = f"train: {train_name} " + (f"less its {' and '.join(held)} split{'s' if len(held) > 1 else ''}"
                                            if held else "as given")
    note = f"{train_note}; {validation_note}; {splits.test_note}"
    names = splits.label_names
    summary = DataSummary(names, splits.files, tuple(
        (split, tuple(int(n) for n in np.bincount(part.labels, minlength=len(names))))
        for split, part in (("train", fit), ("validation", validation), ("test", splits.test))), note)
    return TrainingData(train=_reviews(fit), test=_reviews(splits.test), source=run_config.data.train,
                        validation=_reviews(validation), label_names=names, split_note=note, imdb=False,
                        summary=summary)


def load_training_data(run_config: RunConfig, imdb_source: str | os.PathLike | None = None, *,
                       progress: bool = True, allow_incomplete: bool = False) -> TrainingData:
    """The data ``run_config`` was (or is to be) trained on: IMDB from ``imdb_source`` (as load_imdb finds it),
    or the user's files its ``data`` names, split as at training (``read_labeled_splits``, ``training_data``)."""
    if run_config.data.imdb:
        return load_imdb(imdb_source, progress=progress, allow_incomplete=allow_incomplete)
    return training_data(read_labeled_splits(run_config.data), run_config)


def _reviews(texts: LabeledTexts) -> Reviews:
    return Reviews(texts=list(texts.texts), labels=np.array(texts.labels, dtype=np.int32))


def profile_texts(texts, labels, classes: int, tokenizer: TokenizerConfig | None = None) -> DataProfile:
    """The statistics ``config.sized_for_data`` sizes a model by, in words of the tokenizer rule they are for.

    Without ``tokenizer``, the words are those of the default rule, or of
    ``character_words="cjk"`` when 30% of the letters are Han, Hiragana or
    Katakana (as sized_for_data then chooses). The n-grams counted are the
    bigrams and trigrams of the words a vocabulary would keep (seen twice,
    at most the 10,000 most frequent), the others read as one unknown word,
    as the tokenizer reads them.
    """
    from sentilite.runtime.tokenizer import CJK_CHARACTER_RANGES, split_words

    from .config import CJK_SHARE_FOR_CHARACTER_WORDS, MAX_VOCAB_SIZE, DataProfile

    texts = list(texts)
    cjk = re.compile("[" + "".join(f"\\U{a:08X}-\\U{b:08X}" for a, b in CJK_CHARACTER_RANGES) + "]")
    sample = texts if len(texts) <= 5_000 else [texts[i] for i in
                                                np.random.default_rng(0).choice(len(texts), 5_000, replace=False)]
    letters = sum(sum(c.isalnum() for c in text) for text in sample)
    cjk_share = sum(len(cjk.findall(text)) for text in sample) / max(letters, 1)
    if tokenizer is None:
        tokenizer = TokenizerConfig(
            character_words="cjk" if cjk_share >= CJK_SHARE_FOR_CHARACTER_WORDS else "none")
    ids_of: dict[str, int] = {}
    rows = []
    for text in texts:
        rows.append(np.array([ids_of.setdefault(word, len(ids_of)) for word in split_words(text, tokenizer)],
                             dtype=np.int64))
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    counts = np.bincount(flat, minlength=len(ids_of))
    half = len(texts) // 2
    half_words = len(np.unique(np.concatenate(rows[:half]))) if half and lengths[:half].sum() else 0
    # Words a vocabulary keeps: seen twice, the most frequent first; the rest are one unknown word (0).
    kept = np.argsort(-counts, kind="stable")[:MAX_VOCAB_SIZE - 2]
    kept = kept[counts[kept] >= 2]
    known = np.zeros(len(ids_of), np.int64)
    known[kept] = np.arange(1, len(kept) + 1)
    words = known[flat].astype(np.uint64)
    row_of = np.repeat(np.arange(len(rows)), lengths)
    base = np.uint64(len(kept) + 1)
    keys = []
    for n in (2, 3):
        if len(words) < n:
            continue
        same = row_of[n - 1:] == row_of[:len(row_of) - n + 1]
        key = words[:len(words) - n + 1].copy()
        for k in range(1, n):
            key = key * base + words[k:len(words) - n + 1 + k]
        keys.append(key[same] * np.uint64(2) + np.uint64(n - 2))  # the last bit keeps bigrams from trigrams
    distinct_ngrams = ngrams_twice = 0
    if keys:
        _, ngram_counts = np.unique(np.concatenate(keys), return_counts=True)
        distinct_ngrams, ngrams_twice = len(ngram_counts), int((ngram_counts >= 2).sum())
    return DataProfile(
        rows=len(texts), label_counts=tuple(int(n) for n in np.bincount(np.asarray(labels, np.int64),
                                                                         minlength=classes)),
        median_words=float(np.median(lengths)) if len(lengths) else 0.0,
        p95_words=int(np.percentile(lengths, 95, method="higher")) if len(lengths) else 0,
        max_words=int(lengths.max()) if len(lengths) else 0, distinct_words=len(ids_of),
        half_distinct_words=half_words, words_seen_twice=int((counts >= 2).sum()),
        distinct_ngrams=distinct_ngrams, ngrams_seen_twice=ngrams_twice, cjk_share=round(float(cjk_share), 4))
