"""Work that runs in a child process (a converter's calibrator, the MediaPipe client):
a hang, a crash or a missing result becomes the exporter's own error, not a hung or dead export."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

STDERR_TAIL_LINES = 6


def run_child(cmd: Sequence[str], *, what: str, output: Path, timeout: float, error: type[Exception],
              env: Mapping[str, str] | None = None) -> None:
    """Run ``cmd`` until it writes ``output``; raise ``error`` naming ``what`` when it does not."""
    try:
        result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise error(f"{what} took longer than {timeout:.0f} s and was stopped") from None
    if result.returncode != 0 or not output.exists():
        tail = " | ".join((result.stderr or "").strip().splitlines()[-STDERR_TAIL_LINES:])
        how = f"crashed with signal {-result.returncode}" if result.returncode < 0 else f"exited {result.returncode}"
        raise error(f"{what} {how}: {tail}")
