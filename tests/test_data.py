"""IMDB reading, the download path against a local server, and refusal of bad data."""
import functools
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from sentilite.train.errors import ChecksumError, DatasetError
from sentilite.train import data as imdb_data
from sentilite.train.data import extract_archive, load_imdb, resolve_data, train_validation_split


@pytest.mark.integration
def test_reads_the_real_archive(imdb):
    assert len(imdb.train) == 25000 and len(imdb.test) == 25000
    assert imdb.complete and imdb.describe() == "25,000 train and 25,000 test reviews"
    assert int(imdb.train.labels.sum()) == 12500 and int(imdb.test.labels.sum()) == 12500
    # ratings follow the labels: positive reviews are rated 7-10, negative 1-4
    assert imdb.train.ratings[imdb.train.labels == 1].min() >= 7
    assert imdb.train.ratings[imdb.train.labels == 0].max() <= 4
    assert any("<br />" in t for t in imdb.train.texts[:200])


def test_movie_disjoint_split_takes_whole_blocks_of_consecutive_ids():
    from sentilite.train.data import movie_disjoint_split

    labels = np.array([0] * 1000 + [1] * 1000)
    ids = np.concatenate([np.arange(1000)[::-1], np.arange(1000)])  # order in the data does not matter
    tr, va = movie_disjoint_split(labels, ids, 0.2, seed=3)
    tr2, va2 = movie_disjoint_split(labels, ids, 0.2, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(va) == 400 and len(set(tr) & set(va)) == 0 and len(tr) + len(va) == 2000
    assert labels[va].sum() == 200  # stratified
    for label in (0, 1):
        chosen = np.sort(ids[va][labels[va] == label])
        # 1,000 ids of a class make 20 blocks of 50 consecutive ids; 4 whole blocks are chosen
        assert len(chosen) == 200 and len(set(chosen // 50)) == 4


def test_validation_split_is_stratified_seeded_and_disjoint():
    labels = np.array([0] * 600 + [1] * 400)
    tr, va = train_validation_split(labels, 0.25, seed=7)
    tr2, va2 = train_validation_split(labels, 0.25, seed=7)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(va) == 250 and len(set(tr) & set(va)) == 0 and len(tr) + len(va) == 1000
    assert labels[va].sum() == 100  # 25% of each class
    _, va3 = train_validation_split(labels, 0.25, seed=8)
    assert not np.array_equal(va, va3)


def _make_tar(path: Path, members: dict[str, bytes], extra=None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for info in extra or []:
            tar.addfile(info)
    return path


def _tiny_members(skip=()):
    members = {}
    for split in ("train", "test"):
        for cls, rating in (("pos", 9), ("neg", 2)):
            if (split, cls) in skip:
                continue
            for i in range(3):
                members[f"aclImdb/{split}/{cls}/{i}_{rating}.txt"] = f"{split} {cls} review {i}<br />".encode()
    return members


def test_tiny_archive_and_its_extracted_folder_read_the_same(tmp_path):
    archive = _make_tar(tmp_path / "tiny.tar.gz", _tiny_members())
    from_tar = load_imdb(archive, progress=False, allow_incomplete=True)
    folder = extract_archive(archive, tmp_path / "out")
    from_dir = load_imdb(folder.parent, progress=False, allow_incomplete=True)
    assert from_tar.train.texts == from_dir.train.texts
    assert not from_tar.complete and from_tar.describe().startswith("6 train and 6 test reviews (INCOMPLETE")
    assert from_tar.test.ids.tolist() == [0, 1, 2, 0, 1, 2]
    assert from_tar.train.texts[0] == "train neg review 0<br />"
    assert from_tar.test.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert from_tar.test.ratings.tolist() == [2, 2, 2, 9, 9, 9]


def test_missing_path(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'}: IMDB data not found"):
        load_imdb(tmp_path / "nope")


def test_folder_without_the_layout(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetError, match="expected an aclImdb/ folder"):
        load_imdb(tmp_path)
    (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with pytest.raises(DatasetError, match="missing folder train/neg/"):
        load_imdb(tmp_path)


def test_incomplete_copies_are_refused_with_their_counts(tmp_path):
    archive = _make_tar(tmp_path / "tiny.tar.gz", _tiny_members())
    with pytest.raises(DatasetError, match=r"incomplete IMDB copy: expected 12,500 reviews in each of train/test x "
                                           r"neg/pos, found train/neg 3, train/pos 3, test/neg 3, test/pos 3 \(pass "
                                           r"--allow-incomplete"):
        load_imdb(archive, progress=False)
    empty = _make_tar(tmp_path / "empty.tar.gz", _tiny_members(skip={("test", "neg")}))
    with pytest.raises(DatasetError, match=r"found train/neg 3, train/pos 3, test/neg 0, test/pos 3$"):
        load_imdb(empty, progress=False, allow_incomplete=True)  # an empty class is never accepted


def test_corrupt_and_truncated_archives(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is not an archive" * 100)
    with pytest.raises(DatasetError, match=f"{garbage}: not a readable tar archive"):
        load_imdb(garbage, progress=False)
    good = _make_tar(tmp_path / "tiny.tar.gz", _tiny_members())
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatasetError, match="truncated.tar.gz: "):
        load_imdb(truncated, progress=False)


@pytest.mark.parametrize(
    "bad",
    [
        "symlink",
        "hardlink",
        "device",
        "escape",
        "absolute",
    ],
)
def test_unsafe_members_are_refused_and_leave_nothing(tmp_path, bad):
    members = _tiny_members()
    extra = []
    if bad == "symlink":
        info = tarfile.TarInfo("aclImdb/train/pos/99_9.txt")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        extra.append(info)
    elif bad == "hardlink":
        info = tarfile.TarInfo("aclImdb/train/pos/98_9.txt")
        info.type, info.linkname = tarfile.LNKTYPE, "aclImdb/train/pos/0_9.txt"
        extra.append(info)
    elif bad == "device":
        info = tarfile.TarInfo("aclImdb/dev")
        info.type = tarfile.CHRTYPE
        extra.append(info)
    elif bad == "escape":
        members["aclImdb/../../evil.txt"] = b"x"
    elif bad == "absolute":
        members["/tmp/evil.txt"] = b"x"
    archive = _make_tar(tmp_path / "evil.tar.gz", members, extra)
    dest = tmp_path / "cache"
    with pytest.raises(DatasetError, match="refusing to extract"):
        extract_archive(archive, dest)
    assert list(dest.iterdir()) == []  # no partial tree, no staging folder
    assert not (tmp_path / "evil.txt").exists()


@pytest.fixture
def archive_server(imdb_path):
    """Serve the shared archive under the official name on 127.0.0.1."""
    if not imdb_path.is_file():
        pytest.skip("needs the IMDB .tar.gz")
    root = imdb_path.parent
    link_dir = root
    name = imdb_data.IMDB_ARCHIVE_NAME

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            return str(imdb_path) if path.lstrip("/") == name else str(link_dir / "missing")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", hashlib.sha256(imdb_path.read_bytes()).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_download_path_end_to_end(tmp_path, monkeypatch, archive_server):
    base_url, sha = archive_server
    monkeypatch.delenv("IMDB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(imdb_data.ENV_BASE_URL, base_url)
    monkeypatch.setenv(imdb_data.ENV_SHA256, sha)
    path = resolve_data(None, progress=False)
    assert path == tmp_path / "xdg" / "sentilite" / "aclImdb"
    cache = path.parent
    assert sorted(p.name for p in cache.iterdir()) == ["aclImdb", "aclImdb_v1.tar.gz"]  # no .partial left
    data = load_imdb(None, progress=False)
    assert len(data.train) == 25000 and len(data.test) == 25000
    # second call uses the cache without the server
    monkeypatch.setenv(imdb_data.ENV_BASE_URL, "http://127.0.0.1:9/")
    assert resolve_data(None, progress=False) == path


@pytest.mark.integration
def test_checksum_mismatch_discards_the_download(tmp_path, archive_server):
    base_url, _ = archive_server
    with pytest.raises(ChecksumError, match="sha256 mismatch: expected 0000"):
        imdb_data.download_imdb(tmp_path, base_url=base_url, sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_names_the_url(tmp_path):
    with pytest.raises(DatasetError, match=r"http://127.0.0.1:9/aclImdb_v1.tar.gz: download failed"):
        imdb_data.download_imdb(tmp_path, base_url="http://127.0.0.1:9/", progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []
