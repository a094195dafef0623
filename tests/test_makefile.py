"""`make install` on a disk too full for it stops before it starts, with one clear line."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _make_install(venv_dir: Path, min_free_gib: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "install", f"VENV={venv_dir}",
                           f"MIN_FREE_GIB={min_free_gib}", f"PYTHON={sys.executable}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_disk_without_room_stops_make_install_before_any_venv_exists(tmp_path):
    result = _make_install(tmp_path / "not-yet" / ".venv", "100000000")
    assert result.returncode != 0
    line = [x for x in result.stderr.splitlines() if x.startswith("make install:")]
    assert len(line) == 1, result.stderr
    assert f"GiB free in {tmp_path}, the virtual environments need about 1e+08 GiB" in line[0]
    assert "MIN_FREE_GIB=0" in line[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "not-yet").exists()


def test_min_free_gib_0_skips_the_check(tmp_path):
    # A venv folder under a regular file cannot be made: the run gets past the check, then stops at `-m venv`.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _make_install(blocker / ".venv", "0")
    assert result.returncode != 0
    assert "make install:" not in result.stderr
    assert f"-m venv {blocker}/.venv" in result.stdout
