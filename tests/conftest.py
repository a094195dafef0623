import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_v1_labeled.tar.gz"


def imdb_source() -> Path | None:
    """The real IMDB archive: $IMDB_DATA, else the shared copy beside the repository."""
    env = os.environ.get("IMDB_DATA")
    if env and Path(env).exists():
        return Path(env)
    return SHARED_ARCHIVE if SHARED_ARCHIVE.exists() else None


@pytest.fixture(scope="session")
def imdb_path() -> Path:
    path = imdb_source()
    if path is None:
        pytest.skip("IMDB data not available: set IMDB_DATA to the aclImdb folder or .tar.gz")
    return path


@pytest.fixture(scope="session")
def imdb(imdb_path):
    from sentilite.train.data import load_imdb

    return load_imdb(imdb_path, progress=False)
