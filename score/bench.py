"""`sentilite bench-score`: rows/s and peak memory of `sentilite score`, one process vs every core vs Spark.

The 25,000 IMDB test reviews, repeated to ``rows`` rows, are written as one
JSON Lines file and scored by the real command in a fresh process for each
run, so start-up (model loading, worker processes, the JVM) is counted as a
user pays it. Peak memory is the largest sum of resident memory over the
command's whole process tree (main, workers, the JVM and its Python workers),
sampled every 0.1 s.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sentilite.shared.files import atomic_write_json, atomic_write_text

from .job import available_cores

RUN_NAMES = ("one-process", "all-cores", "spark")


@dataclass(frozen=True)
class ScoreBenchConfig:
    rows: int = 100_000
    runs: tuple[str, ...] = RUN_NAMES
    spark_master: str = "local[2]"
    part_rows: int = 10_000


class TreeMemory:
    """Peak of the summed RSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))
            self._stop.wait(self.interval)


def tree_rss_mb(root: int) -> float:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total / 1024


def write_input(texts: list[str], rows: int, path: Path) -> Path:
    """The reviews repeated to ``rows`` JSON lines, each with an id."""
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps({"id": str(i), "text": texts[i % len(texts)]}, ensure_ascii=False) + "\n")
    return path


def timed_score(args: list[str]) -> dict:
    """Run `sentilite score` in a fresh process; its summary plus wall time and the tree's peak RSS."""
    command = [sys.executable, "-m", "sentilite.cli", "score", *args, "--quiet"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemory(process.pid) as memory:
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {stderr[-2000:]}")
    summary = json.loads(stdout)
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(memory.peak_mb, 1), "summary": summary}


def compare_outputs(reference: Path, other: Path) -> dict:
    """Rows, same labels and the largest P(positive) difference between two outputs, matched by id."""
    import pyarrow.dataset as ds

    def read(path):
        table = ds.dataset(str(path), format="parquet").to_table(columns=["id", "label", "p_positive"])
        return dict(zip(table.column("id").to_pylist(), zip(table.column("label").to_pylist(),
                                                           table.column("p_positive").to_pylist())))

    a, b = read(reference), read(other)
    same_ids = a.keys() == b.keys()
    diffs = [abs(a[k][1] - b[k][1]) for k in a if k in b and a[k][1] is not None]
    return {"rows": len(b), "same_ids": same_ids, "same_labels": same_ids and all(a[k][0] == b[k][0] for k in a),
            "max_abs_diff": max(diffs) if diffs else 0.0}


def run_score_bench(model: str, out: str | os.PathLike, config: ScoreBenchConfig = ScoreBenchConfig(),
                    data=None, progress: bool = True) -> dict:
    from sentilite.train.data import load_imdb

    out = Path(out)
    texts = load_imdb(data, progress=progress).test.texts
    cores = available_cores()
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="sentilite-bench-score-") as tmp:
        tmp = Path(tmp)
        source = write_input(texts, config.rows, tmp / "reviews.jsonl")
        common = [str(source), "--model", str(model), "--id-column", "id"]
        plans = {
            "one-process": ["--workers", "1", "--part-rows", str(config.part_rows)],
            "all-cores": ["--workers", str(cores), "--part-rows", str(config.part_rows)],
            "spark": ["--engine", "spark", "--spark-master", config.spark_master],
        }
        for name in config.runs:
            if progress:
                print(f"[sentilite.bench-score] {name}: scoring {config.rows:,} rows", file=sys.stderr)
            result = timed_score(common + ["--out", str(tmp / name)] + plans[name])
            summary = result.pop("summary")
            result["rows"] = summary["rows"]
            result["rows_per_s"] = round(summary["rows"] / result["wall_s"], 1)
            if name == "spark":
                result["startup_s"] = summary["seconds_startup"]
                result["scoring_s"] = summary["seconds_scoring"]
                result["rows_per_s_scoring_only"] = round(summary["rows"] / summary["seconds_scoring"], 1)
                result["master"] = summary["master"]
            else:
                result["workers"] = summary["workers"]
            runs[name] = result
        reference = "one-process" if "one-process" in runs else None
        for name in runs:
            if reference and name != reference:
                runs[name]["vs_one_process"] = compare_outputs(tmp / reference, tmp / name)
    base = runs.get("one-process", {}).get("rows_per_s")
    for result in runs.values():
        result["speedup"] = round(result["rows_per_s"] / base, 2) if base else None
    report = {
        "rows": config.rows, "model": str(model), "cores": cores, "runs": runs,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "config": asdict(config),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "bench_score.json", report)
    atomic_write_text(out / "bench_score.md", render(report))
    return report


def render(report: dict) -> str:
    runs = report["runs"]
    lines = [f"# `sentilite score`: {report['rows']:,} rows (IMDB test reviews, repeated)", "",
             f"Model `{report['model']}`, {report['cores']} cores; rows/s are end to end (start-up included), "
             f"peak RSS is the whole process tree.", "",
             "| run | rows/s | x one process | wall s | peak RSS MB | same labels | max abs diff |",
             "|---|---:|---:|---:|---:|:---:|---:|"]
    for name, r in runs.items():
        same = r.get("vs_one_process", {})
        lines.append(f"| {name} | {r['rows_per_s']:,.0f} | {r['speedup'] or '-'} | {r['wall_s']} | "
                     f"{r['peak_rss_mb']:,.0f} | {same.get('same_labels', '-')} | "
                     f"{same.get('max_abs_diff', '-') if same else '-'} |")
    if "spark" in runs:
        s = runs["spark"]
        per_core = runs.get("one-process", {}).get("rows_per_s")
        lines += ["", f"Spark ({s['master']}): {s['startup_s']} s to start the session, {s['scoring_s']} s in the "
                  f"scoring job ({s['rows_per_s_scoring_only']:,.0f} rows/s there). The rest of the wall time is "
                  f"the JVM's exit, the pass that counts each file split's lines (for line-number ids) and the "
                  f"summary's read-back."]
        if per_core:
            lines += ["", f"Scaling estimate: a Python worker scores about {per_core:,.0f} rows/s (the one-process "
                      f"rate here), so E executors x C cores should reach about E x C x {per_core:,.0f} x 0.8 "
                      f"rows/s (0.8: the JVM's reading and Arrow hand-off to Python share the cores), plus ~30 s "
                      f"of start-up per job."]
    return "\n".join(lines) + "\n"
