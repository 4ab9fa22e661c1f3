"""The web service's worker processes: two lanes, time limits, replacement of killed workers.

Input: jobs ``(fn, kwargs)`` (a module-level function, which a worker imports by name, and
its arguments) with a lane and a time limit, from any thread (``Pool.submit``). Output: a
``concurrent.futures.Future`` per job, resolved with ``jobs.run_job``'s outcome, or with
``TimeoutError`` (the worker was killed) or ``Crash``.

Contract:
- Workers are started once, by the ``forkserver`` method (``spawn`` where there is none):
  never forked from the server, whose threads (uvicorn's, BLAS's, JAX's) a fork would copy
  in an unknown state. The fork server is started with one BLAS thread and matdiff already
  imported, so a new worker costs a fork, not an import.
- Two lanes. ``fast`` keeps ``fast`` workers for requests estimated cheap; ``heavy`` runs
  the rest on ``heavy`` workers at a lower CPU priority (``nice``), and helps the fast lane
  when it has nothing to do and the fast workers are all busy. A fast-lane job still
  running after ``demote_after`` seconds is *demoted*: its worker leaves the lane (lowered
  to the heavy priority, finishing that one job) and a new worker takes its place, so a
  cost estimate that was wrong cannot block the cheap requests behind it.
- A job's time limit counts the CPU seconds of its worker where the system tells them
  (Linux ``/proc``), so a busy machine slows a job without failing it; the wall clock is
  capped at ``WALL_FACTOR`` times the limit. A job over either is killed with its worker,
  and a new worker is started in its place.
- A job whose client has gone (``Job.abandon``) is dropped from its queue, or killed.
- Each queue holds at most ``max_queue`` jobs; ``submit`` raises ``Busy`` beyond that.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import matdiff as md
from matdiff.web.jobs import Outcome, run_job

try:
    import resource
except ImportError:  # pragma: no cover -- Windows: no memory limit
    resource = None  # type: ignore[assignment]

__all__ = ["Pool", "Job", "Busy", "Crash", "default_pool", "run_limited", "WALL_FACTOR"]

WALL_FACTOR = 3.0     # wall-clock cap of a job, as a multiple of its CPU-time limit
POLL = 0.05           # seconds between looks at a running job
HEAVY_NICE = 2        # CPU priority of heavy-lane workers (0 is the server's)
MEMORY_LIMIT = 4 << 30  # bytes of address space per worker
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
CTX: Any = multiprocessing.get_context(METHOD)  # forkserver or spawn
CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Busy(RuntimeError):
    """A lane's queue is full."""


class Crash(RuntimeError):
    """A computation failed for a reason other than bad input (a bug, or a dead worker)."""


# ----------------------------------------------------------------------------- one worker


def _serve_jobs(conn: Connection, nice: int, memory_limit: int | None) -> None:
    """A worker's main loop (in the child): receive ``(fn, kwargs)``, send the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's to handle
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    if memory_limit is not None and resource is not None:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    while True:
        try:
            fn, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        outcome = run_job(fn, kwargs)
        try:
            conn.send(outcome)
        except (EOFError, OSError):
            return
        except Exception as err:  # an outcome that does not pickle: report it instead
            conn.send(("crash", f"the result could not be sent ({type(err).__name__}: {err})"))


class Worker:
    """One worker process and the server's end of its pipe."""

    def __init__(self, nice: int = 0, memory_limit: int | None = MEMORY_LIMIT):
        self.conn, child = CTX.Pipe()
        self.process = CTX.Process(target=_serve_jobs, args=(child, nice, memory_limit),
                                   daemon=True, name="matdiff-worker")
        self.process.start()
        child.close()

    def alive(self) -> bool:
        return self.process.is_alive()

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far, where ``/proc`` tells it."""
        try:
            with open(f"/proc/{self.process.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime
        except (OSError, IndexError, ValueError):
            return None

    def renice(self, nice: int) -> None:
        with contextlib.suppress(OSError, AttributeError):
            pid = self.process.pid
            os.setpriority(os.PRIO_PROCESS, pid, max(nice, os.getpriority(os.PRIO_PROCESS, pid)))

    def receive(self) -> Outcome:
        try:
            outcome: Outcome = self.conn.recv()
            return outcome
        except (EOFError, OSError):
            self.process.join(1)
            return ("crash", f"the worker process died (exit code {self.process.exitcode})")

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def close(self) -> None:
        """Let the process end: it leaves its loop when the pipe closes."""
        self.conn.close()
        self.process.join(1)
        if self.process.is_alive():
            self.kill()


# ----------------------------------------------------------------------------- jobs


@dataclass(eq=False)  # compared and hashed by identity
class Job:
    """One computation: ``fn(**kwargs)`` in a worker, within ``timeout`` CPU seconds."""

    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    timeout: float
    future: Future[Outcome] = field(default_factory=Future)
    abandoned: bool = False
    started: float = 0.0           # monotonic time when a worker took it
    cpu_start: float | None = None  # the worker's CPU seconds then

    def abandon(self) -> None:
        """The client has gone: drop the job if it is queued, kill it if it runs."""
        self.abandoned = True
        self.future.cancel()

    def elapsed(self, worker: Worker) -> tuple[float, float]:
        """(CPU seconds, wall seconds) since the job started; CPU is wall where unknown."""
        wall = time.monotonic() - self.started
        now = worker.cpu_seconds()
        cpu = wall if now is None or self.cpu_start is None else now - self.cpu_start
        return cpu, wall


Demote = Callable[["Worker", Job, float], bool]  # (worker, job, wall seconds) -> moved out?


def _watch(worker: Worker, job: Job, demote: Demote | None = None) -> str:
    """Wait for ``job`` on ``worker``: ``"done"`` (its future is set), ``"killed"`` (over its
    time limit, or abandoned: the worker is dead) or ``"demoted"`` (``demote`` moved it out
    of its lane; the job still runs)."""
    while not worker.conn.poll(POLL):
        cpu, wall = job.elapsed(worker)
        if job.abandoned or cpu > job.timeout or wall > WALL_FACTOR * job.timeout:
            worker.kill()
            job.future.set_exception(TimeoutError(f"{cpu:.1f} s of CPU, {wall:.1f} s"))
            return "killed"
        if demote is not None and demote(worker, job, wall):
            return "demoted"
    job.future.set_result(worker.receive())
    return "done"


# ----------------------------------------------------------------------------- lanes


class Lane:
    """A queue of jobs and the threads that feed them to this lane's workers, one each.
    A lane with ``helps`` set takes that lane's jobs when its own queue is empty and that
    lane has no idle worker."""

    def __init__(self, name: str, size: int, nice: int, max_queue: int,
                 memory_limit: int | None, ready: threading.Condition,
                 helps: Lane | None = None):
        self.name, self.size, self.nice = name, size, nice
        self.max_queue, self.memory_limit = max_queue, memory_limit
        self.queue: collections.deque[Job] = collections.deque()
        self.ready = ready  # one lock and condition for the pool's lanes
        self.helps = helps
        self.idle = 0  # threads waiting for a job
        self.active: set[Job] = set()  # the jobs its workers run now
        self.closing = False
        self.threads: list[threading.Thread] = []
        self.demote: Demote | None = None

    def start(self) -> None:
        for i in range(self.size):
            t = threading.Thread(target=self._serve, name=f"matdiff-{self.name}-{i}",
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def put(self, job: Job) -> None:
        with self.ready:
            if len(self.queue) >= self.max_queue:
                raise Busy(f"{len(self.queue)} computations are waiting in the {self.name} lane")
            self.queue.append(job)
            self.ready.notify_all()

    def _take(self) -> Job | None:
        with self.ready:
            self.idle += 1
            try:
                while not self.closing:
                    queue = self.queue or self._helped()
                    if queue:
                        self.ready.notify_all()  # idle counts change: helpers look again
                        return queue.popleft()
                    self.ready.wait()
                return None
            finally:
                self.idle -= 1

    def _helped(self) -> collections.deque[Job] | None:
        """The queue of the lane this one helps, if it has jobs and no idle worker."""
        other = self.helps
        busy = other is not None and other.queue and other.idle == 0
        return other.queue if busy and other is not None else None

    def _new_worker(self) -> Worker | None:
        try:
            return Worker(self.nice, self.memory_limit)
        except Exception:  # noqa: BLE001 -- no process now; the next job tries again
            return None

    def _serve(self) -> None:
        worker = self._new_worker()
        while (job := self._take()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue  # abandoned while queued
            if worker is None or not worker.alive():
                worker = self._new_worker()
            if worker is None:
                job.future.set_exception(Crash("cannot start a worker process"))
                continue
            job.started, job.cpu_start = time.monotonic(), worker.cpu_seconds()
            with self.ready:
                self.active.add(job)
            try:
                worker.conn.send((job.fn, job.kwargs))
                state = _watch(worker, job, self.demote)
            except Exception as err:  # noqa: BLE001 -- a job that cannot be sent, a dead pipe
                worker.kill()
                job.future.set_exception(Crash(f"{type(err).__name__}: {err}"))
                state = "killed"
            finally:
                with self.ready:
                    self.active.discard(job)
            if state != "done":
                worker = self._new_worker()  # the old one is dead, or left with its job
        if worker is not None:
            worker.close()

    def stats(self) -> dict[str, int]:
        with self.ready:
            return {"workers": self.size, "running": len(self.active),
                    "queued": len(self.queue)}

    def close(self) -> None:
        """Take no more jobs; drop the queued ones and kill the running ones."""
        with self.ready:
            self.closing = True
            for job in [*self.queue, *self.active]:
                job.abandon()
            self.queue.clear()
            self.ready.notify_all()


# ----------------------------------------------------------------------------- the pool


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Pool:
    """Worker processes in a fast and a heavy lane (see the module docstring).

    >>> pool = Pool(fast=1, heavy=1)
    >>> pool.submit(round, {"number": 2.5}, heavy=False, timeout=5).future.result(30)
    ('ok', 2)
    >>> pool.close()
    """

    def __init__(self, fast: int = 2, heavy: int | None = None, *, demote_after: float = 1.0,
                 max_queue: int = 256, max_demoted: int | None = None,
                 memory_limit: int | None = MEMORY_LIMIT):
        heavy = heavy if heavy is not None else max(1, min(4, os.cpu_count() or 1))
        ready = threading.Condition()
        self.fast = Lane("fast", fast, 0, max_queue, memory_limit, ready)
        self.heavy = Lane("heavy", heavy, HEAVY_NICE, max_queue, memory_limit, ready,
                          helps=self.fast)
        self.fast.demote = self._demote
        self.demote_after = demote_after
        self.max_demoted = heavy if max_demoted is None else max_demoted
        self.demoted: set[Job] = set()  # demoted jobs still running
        self.lock = threading.Lock()
        self.started = False

    def start(self) -> None:
        """Start the fork server and the workers (once; later calls do nothing)."""
        with self.lock:
            if self.started:
                return
            self.started = True
        if METHOD == "forkserver":
            CTX.set_forkserver_preload(["matdiff.web.jobs"])
            with _environ(ONE_THREAD):  # the fork server, and so every worker: one BLAS thread
                multiprocessing.forkserver.ensure_running()
        self.fast.start()
        self.heavy.start()

    def submit(self, fn: Callable[..., Any], kwargs: dict[str, Any], *, heavy: bool,
               timeout: float) -> Job:
        """Queue ``fn(**kwargs)`` in a lane; raises ``Busy`` when that queue is full."""
        self.start()
        job = Job(fn, kwargs, timeout)
        (self.heavy if heavy else self.fast).put(job)
        return job

    def _demote(self, worker: Worker, job: Job, wall: float) -> bool:
        """Called by a fast-lane thread while ``job`` runs: move it out of the lane?"""
        if wall < self.demote_after:
            return False
        with self.lock:
            if len(self.demoted) >= self.max_demoted:
                return False
            self.demoted.add(job)
        worker.renice(HEAVY_NICE)
        threading.Thread(target=self._finish_demoted, args=(worker, job), daemon=True,
                         name="matdiff-demoted").start()
        return True

    def _finish_demoted(self, worker: Worker, job: Job) -> None:
        try:
            if _watch(worker, job) == "done":
                worker.close()
        finally:
            with self.lock:
                self.demoted.discard(job)

    def stats(self) -> dict[str, Any]:
        """Workers, running and queued jobs per lane, and the demoted jobs running."""
        with self.lock:
            demoted = len(self.demoted)
        return {"fast": self.fast.stats(), "heavy": self.heavy.stats(), "demoted": demoted,
                "start_method": METHOD}

    def close(self) -> None:
        """Stop taking jobs, drop the queued ones and end the workers."""
        self.fast.close()
        self.heavy.close()
        with self.lock:
            for job in self.demoted:
                job.abandon()
        for t in self.fast.threads + self.heavy.threads:
            t.join(10)


_default: Pool | None = None
_default_lock = threading.Lock()


def default_pool() -> Pool:
    """The process-wide pool, made on first use and closed at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pool()
            atexit.register(_default.close)
        return _default


def run_limited(fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float,
                pool: Pool | None = None) -> Any:
    """``fn(**kwargs)`` in a worker that is killed past ``timeout`` CPU seconds.

    Raises ``TimeoutError`` then, ``MatdiffError`` for bad input and ``Crash`` otherwise.

    >>> from matdiff.web.jobs import render
    >>> run_limited(render, {"latex": "x^2"}, timeout=5)["mathml"].count("<msup>")
    1
    """
    job = (pool or default_pool()).submit(fn, kwargs, heavy=True, timeout=timeout)
    return unpack(job.future.result())


def unpack(outcome: Outcome) -> Any:
    """An outcome's result; raises ``MatdiffError`` or ``Crash`` for the other kinds."""
    kind, payload = outcome
    if kind == "bad":
        message, pos, end = payload
        raise md.MatdiffError(message, pos=pos, end=end)
    if kind == "crash":
        raise Crash(payload)
    return payload
