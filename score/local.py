"""`sentilite score` on one machine: stream the input, score parts on every core, resume after a kill.

The main process reads the input a chunk at a time and hands each chunk
that has no part file yet to a worker process; each worker loads the model
once and writes whole parts (temp file, then rename). At most two chunks
per worker are in flight, so memory stays flat whatever the input's size.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from sentilite.shared.errors import SentiliteError
from sentilite.shared.files import atomic_write_json, parse_json

from .errors import ScoreOutputError, ScoreWorkerError
from .inputs import InputFiles, count_rows, fingerprint, read_chunks
from .job import SUCCESS_FILE, SUMMARY_FILE, ModelSpec, OutputFolder, Settings, job_record
from .outputs import PartCounts, PartWriter, part_counts, summary_counts
from .records import Rows, rows_from_cells, rows_from_json_lines, rows_from_lines, score_rows

log = logging.getLogger("sentilite.score")


@dataclass(frozen=True)
class Task:
    """One chunk to score into one part file."""

    name: str
    source: str
    format: str
    first: int
    count: int
    kind: str
    payload: object


def parse_task(task: Task, text_column: str, id_column: str | None) -> Rows:
    if task.kind == "lines":
        positions = range(task.first, task.first + len(task.payload))
        if task.format == "jsonl":
            return rows_from_json_lines(task.payload, positions, text_column, id_column)
        return rows_from_lines(task.payload, positions)
    texts, ids = task.payload
    return rows_from_cells(texts, ids)


def score_task(model, writer: PartWriter, task: Task, text_column: str, id_column: str | None) -> PartCounts:
    rows = parse_task(task, text_column, id_column)
    return writer.write(task.name, rows.ids, task.source, score_rows(model, rows), rows.errors)


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used."""
    times = os.times()
    return times.user + times.system


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- worker processes ------------------------------------------------------------------------
def _exit_with_parent(parent_pid: int) -> None:
    """A worker whose main process was killed (SIGKILL runs no cleanup) must not score on as an orphan."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _portable(exc: BaseException) -> BaseException:
    """An exception that survives pickling back to the main process, with what the user needs."""
    if isinstance(exc, SentiliteError) and len(exc.args) == 1:
        return exc
    return ScoreWorkerError(f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc))[-3000:])


def _worker_main(tasks, results, spec: ModelSpec, writer: PartWriter, text_column: str,
                 id_column: str | None, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the main process decides
    _exit_with_parent(parent_pid)
    try:
        model = spec.load(num_threads=1)
    except BaseException as exc:
        results.put(("failed", None, _portable(exc)))
        return
    while True:
        task = tasks.get()
        if task is None:
            break
        try:
            stats = score_task(model, writer, task, text_column, id_column)
        except BaseException as exc:
            results.put(("failed", task.name, _portable(exc)))
            return
        results.put(("done", task.name, stats))
    results.put(("peak", os.getpid(), (peak_rss_mb(), cpu_seconds())))


class WorkerPool:
    """Worker processes fed through a bounded queue; any worker's failure stops the job."""

    def __init__(self, workers: int, spec: ModelSpec, writer: PartWriter, text_column: str,
                 id_column: str | None):
        # spawn, not fork: a forked copy of a process with threads (progress bar, onnxruntime) can deadlock.
        ctx = multiprocessing.get_context("spawn")
        self.tasks = ctx.Queue(maxsize=workers)
        self.results = ctx.Queue()
        self.processes = [
            ctx.Process(target=_worker_main, name=f"sentilite-score-{i}", daemon=True,
                        args=(self.tasks, self.results, spec, writer, text_column, id_column, os.getpid()))
            for i in range(workers)]
        for process in self.processes:
            process.start()
        self.in_flight: dict[str, int] = {}
        self.worker_peaks: list[float] = []
        self.worker_cpu: list[float] = []
        self._finishing = False

    def submit(self, task: Task, on_done) -> None:
        while True:
            try:
                self.tasks.put(task, timeout=0.2)
                self.in_flight[task.name] = task.count
                return
            except queue.Full:
                self.collect(on_done, timeout=0)

    def collect(self, on_done, timeout: float) -> None:
        """Handle every result that is ready (waiting up to ``timeout`` for the first); check the workers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, key, value = self.results.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if kind == "failed":
                raise value
            if kind == "done":
                on_done(key, self.in_flight.pop(key), value)
            elif kind == "peak":
                self.worker_peaks.append(value[0])
                self.worker_cpu.append(value[1])
            deadline = time.monotonic()  # after the first result, take only what is already there
        for process in self.processes:
            if process.exitcode is not None and (process.exitcode != 0 or not self._finishing):
                if self._results_left():
                    continue  # its last messages are still on their way
                raise ScoreWorkerError(
                    f"worker process {process.pid} died (exit code {process.exitcode}), e.g. killed for memory; "
                    f"finished parts are kept: run the same command again to score the rest")

    def _results_left(self) -> bool:
        try:
            return not self.results.empty()
        except OSError:
            return False

    def finish(self, on_done) -> None:
        self._finishing = True
        for _ in self.processes:  # one stop sign each, put as tasks are: never blocking on dead workers
            while True:
                try:
                    self.tasks.put(None, timeout=0.2)
                    break
                except queue.Full:
                    self.collect(on_done, timeout=0)
        while self.in_flight or len(self.worker_peaks) < len(self.processes):
            self.collect(on_done, timeout=0.5)
            if all(p.exitcode is not None for p in self.processes) and not self._results_left():
                self.collect(on_done, timeout=0.2)
                if self.in_flight:
                    raise ScoreWorkerError(f"workers exited with {len(self.in_flight)} parts unwritten; "
                                           f"run the same command again to score them")
                break
        for process in self.processes:
            process.join(timeout=10)

    def terminate(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout=10)
        for q in (self.tasks, self.results):
            q.cancel_join_thread()  # never block exit on a queue's feeder thread
            q.close()


# -- the job -------------------------------------------------------------------------------
def run_local(inputs: InputFiles, settings: Settings, spec: ModelSpec, model, out: Path, *, workers: int,
              id_type: str, quiet: bool = False) -> dict:
    """Score every input row into ``out``; return the summary (also written to ``out``)."""
    from tqdm import tqdm

    started, cpu_started = time.perf_counter(), cpu_seconds()
    writer = PartWriter(str(out), settings.output_format, id_type, spec.sha256, Path(spec.file).name, spec.columns)
    record = job_record(settings, [fingerprint(p) for p in inputs.files], spec)
    folder = OutputFolder(out)
    pool = None
    with folder:
        resumed = folder.open(record)
        if resumed and (out / SUCCESS_FILE).exists() and (out / SUMMARY_FILE).exists():
            log.info("%s: already complete, nothing to do", out)
            summary = parse_json((out / SUMMARY_FILE).read_bytes(), str(out / SUMMARY_FILE), ScoreOutputError)
            summary["already_complete"] = True
            return summary
        existing = {p.name for p in out.glob("part-*" + writer.suffix)}
        if existing:
            log.info("%s: resuming, %d parts already written", out, len(existing))
        log.info("scoring %d %s file(s) with %s (sha256 %s) on %d %s", len(inputs.files), inputs.format,
                 Path(spec.file).name, spec.sha256[:12], workers, "process" if workers == 1 else "worker processes")
        stats: dict[str, PartCounts] = {}
        skipped: list[str] = []
        scored_rows = 0
        bar = None

        def on_done(name: str, count: int, part: PartCounts) -> None:
            nonlocal scored_rows
            stats[name] = part
            scored_rows += count
            bar.update(count)

        try:
            if workers > 1:  # started first: they load the model while the rows are counted
                pool = WorkerPool(workers, spec, writer, settings.text_column, settings.id_column)
            else:
                model = model or spec.load(num_threads=1)
            total = None if quiet else sum(count_rows(p, inputs.format) for p in inputs.files)
            bar = tqdm(total=total, unit=" rows", unit_scale=True, desc="scoring", disable=quiet, file=sys.stderr,
                       mininterval=0.5, smoothing=0.05)
            for file_index, path in enumerate(inputs.files):
                for chunk_index, chunk in enumerate(read_chunks(path, inputs.format, settings.part_rows,
                                                                settings.text_column, settings.id_column)):
                    name = writer.part_name(file_index, chunk_index)
                    if name in existing:
                        skipped.append(name)
                        bar.update(chunk.count)
                        continue
                    task = Task(name, str(path), inputs.format, chunk.first, chunk.count, chunk.kind, chunk.payload)
                    if pool is None:
                        on_done(name, chunk.count,
                                score_task(model, writer, task, settings.text_column, settings.id_column))
                    else:
                        pool.submit(task, on_done)
            if pool is not None:
                pool.finish(on_done)
        except BaseException:
            if pool is not None:
                pool.terminate()
                folder.remove_partials()
            raise
        finally:
            if bar is not None:
                bar.close()
        for name in skipped:
            stats[name] = part_counts(out / name, spec.columns)
        seconds = time.perf_counter() - started
        rows = sum(s.rows for s in stats.values())
        errors = sum(s.errors for s in stats.values())
        label_counts = [sum(s.label_counts[i] for s in stats.values()) for i in range(len(spec.labels))]
        summary = {
            "out": str(out), "engine": "local", "workers": workers, "format": settings.output_format,
            **summary_counts(spec.columns, rows, errors, label_counts),
            "parts": len(stats), "parts_written": len(stats) - len(skipped),
            "parts_resumed": len(skipped), "seconds": round(seconds, 3),
            "rows_per_s": round(scored_rows / seconds, 1) if seconds > 0 else None,
            "model": spec.describe(),
            "peak_rss_mb": {"main": round(peak_rss_mb(), 1),
                            "workers": [round(p, 1) for p in (pool.worker_peaks if pool else [])]},
            # Where the time went: a main process near zero means the workers, not the reader, set the pace.
            "cpu_s": {"main": round(cpu_seconds() - cpu_started, 2),
                      "workers": [round(c, 2) for c in (pool.worker_cpu if pool else [])]},
        }
        atomic_write_json(out / SUMMARY_FILE, summary)
        (out / SUCCESS_FILE).touch()
        return summary
