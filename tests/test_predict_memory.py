"""`sentilite predict` streams standard input: its peak memory does not grow with the number of lines.

Each run feeds the command lines generated on the fly (so neither side ever
holds the whole input), drains its output, and reads the child's peak
resident set size from ``os.wait4`` (the kernel's ru_maxrss of that one
process). Ten times more lines must cost (almost) no more memory.
"""
import os
import random
import subprocess
import sys
import threading

import pytest

from test_hostile_files import write_npz

WORDS = ("w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 great awful film plot "
         "acting the a was").split()
# Peak RSS may differ between runs by allocator noise; a leak of even 100 bytes a line would add 9 MB between
# SMALL and LARGE lines.
MAX_GROWTH_KB = 8 << 10
SMALL, LARGE = 10_000, 100_000


def _lines(n: int, seed: int = 0):
    """n review-like lines of 1 to 60 words (a few of 10,000 words), in chunks of 1,000 lines."""
    rng = random.Random(seed)
    chunk = []
    for i in range(n):
        k = 10_000 if i % 50_000 == 7 else rng.choice((0, 1, 3, 8, 20, 60))
        chunk.append(" ".join(rng.choice(WORDS) for _ in range(k)))
        if len(chunk) == 1000:
            yield ("\n".join(chunk) + "\n").encode()
            chunk = []
    if chunk:
        yield ("\n".join(chunk) + "\n").encode()


def predict_peak_rss(model, n_lines: int, timeout: float = 300) -> tuple[int, int]:
    """(peak RSS in KB, lines written) of `sentilite predict --model model` reading n_lines from stdin."""
    proc = subprocess.Popen([sys.executable, "-m", "sentilite.cli", "predict", "--model", str(model)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    failure = []

    def feed():
        try:
            for chunk in _lines(n_lines):
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError as exc:  # the child died; reported below through its exit status
            failure.append(exc)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        written = sum(chunk.count(b"\n") for chunk in iter(lambda: proc.stdout.read(1 << 16), b""))
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        writer.join(timeout=10)
        proc.returncode = 0  # reaped by os.wait4 above
    assert os.waitstatus_to_exitcode(status) == 0 and not failure, f"predict failed (status {status})"
    return usage.ru_maxrss, written


def _assert_flat(model, small: int, large: int) -> tuple[int, int]:
    rss_small, out_small = predict_peak_rss(model, small)
    rss_large, out_large = predict_peak_rss(model, large)
    assert (out_small, out_large) == (small, large)  # one answer per line, empty lines included
    assert rss_large - rss_small < MAX_GROWTH_KB, (f"peak RSS {rss_small:,} KB for {small:,} lines but "
                                                   f"{rss_large:,} KB for {large:,}")
    return rss_small, rss_large


@pytest.mark.slow
def test_predict_memory_does_not_grow_with_stdin(tmp_path):
    """A tiny numpy model: the cost is the streaming itself (reading, batching, writing)."""
    _assert_flat(write_npz(tmp_path / "model.fp32.npz"), SMALL, LARGE)


@pytest.mark.integration
@pytest.mark.parametrize("file", ["model.int8.onnx", "model.int8.tflite"])
def test_predict_memory_does_not_grow_with_stdin_on_a_real_file(exported, file):
    _assert_flat(exported["gru"][0] / file, SMALL, LARGE)
