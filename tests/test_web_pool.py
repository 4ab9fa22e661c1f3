"""The web service's worker pool: processes from a single-threaded fork server, CPU-time and
wall-clock limits, replacement of killed and dead workers, demotion out of the fast lane,
a bounded queue, and jobs whose client has gone.

The jobs are the small functions below, which a worker imports by name.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from matdiff.web.pool import Busy, Pool, unpack

pytestmark = pytest.mark.web


def spin(seconds: float) -> float:
    """Burn ``seconds`` of CPU time."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return seconds


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def wait_for(path: str) -> str:
    """Sleep until ``path`` exists (at most a minute)."""
    end = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < end:
        time.sleep(0.02)
    return path


def lineage() -> dict[str, int]:
    """This process, its parent, and the number of threads the parent had."""
    with open(f"/proc/{os.getppid()}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    return {"pid": os.getpid(), "ppid": os.getppid(), "parent_threads": threads}


def pid() -> int:
    return os.getpid()


def die() -> None:
    os._exit(3)


def touch(path: str) -> None:
    Path(path).write_text("ran")


def run(pool: Pool, fn: object, heavy: bool = True, timeout: float = 20, **kwargs: object
        ) -> object:
    job = pool.submit(fn, kwargs, heavy=heavy, timeout=timeout)  # type: ignore[arg-type]
    return unpack(job.future.result(60))


@pytest.fixture
def pool() -> Iterator[Pool]:
    p = Pool(fast=1, heavy=1, demote_after=0.3, max_queue=2)
    p.start()
    yield p
    p.close()


def test_workers_come_from_a_single_threaded_fork_server(pool: Pool) -> None:
    assert pool.stats()["start_method"] == "forkserver"
    assert threading.active_count() > 1  # this process has threads: it must not fork
    seen = run(pool, lineage)
    assert isinstance(seen, dict)
    assert seen["ppid"] != os.getpid() and seen["parent_threads"] == 1


def test_a_job_over_its_cpu_limit_is_killed_and_its_worker_replaced(pool: Pool) -> None:
    before = run(pool, pid)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        run(pool, spin, timeout=0.5, seconds=30)
    assert time.monotonic() - start < 10
    after = run(pool, pid)
    assert after != before
    assert run(pool, spin, seconds=0.1) == 0.1


def test_a_sleeping_job_meets_the_wall_clock_cap(pool: Pool) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        run(pool, nap, timeout=0.3, seconds=30)
    assert 0.8 < time.monotonic() - start < 10  # 3 x 0.3 s of wall clock, not 0.3 s of CPU


def test_a_dead_worker_is_reported_and_replaced(pool: Pool) -> None:
    kind, message = pool.submit(die, {}, heavy=True, timeout=5).future.result(30)
    assert kind == "crash" and "died" in message
    assert run(pool, spin, seconds=0.05) == 0.05


def test_a_slow_job_is_demoted_out_of_the_fast_lane(pool: Pool, tmp_path: Path) -> None:
    # The jobs run until the test lets them go, so no timing on a loaded machine can end
    # them before the checks below. The heavy lane is kept busy first: an idle heavy
    # worker helps the fast lane and would take the slow job itself, never demoted (both
    # happened in CI, with a 3 s spin as the slow job).
    gate = tmp_path / "go"
    blocker = pool.submit(wait_for, {"path": str(gate)}, heavy=True, timeout=60)
    deadline = time.monotonic() + 30
    while pool.stats()["heavy"]["running"] != 1:
        assert time.monotonic() < deadline, "the heavy lane never started its job"
        time.sleep(0.05)
    slow = pool.submit(wait_for, {"path": str(gate)}, heavy=False, timeout=60)
    deadline = time.monotonic() + 30     # past demote_after (later on a loaded machine)
    while pool.stats()["demoted"] != 1:
        assert time.monotonic() < deadline, "the slow job was never demoted"
        time.sleep(0.05)
    cheap = pool.submit(pid, {}, heavy=False, timeout=20)
    # Behind the demoted job (or the heavy lane's) it would wait until the gate opens: never.
    assert unpack(cheap.future.result(30)) != 0
    assert pool.stats()["demoted"] == 1 and not slow.future.done()
    gate.write_text("go")
    assert unpack(slow.future.result(60)) == str(gate)
    assert unpack(blocker.future.result(60)) == str(gate)
    deadline = time.monotonic() + 10
    while pool.stats()["demoted"]:
        assert time.monotonic() < deadline, "a finished demoted job is still counted"
        time.sleep(0.05)


def _until_heavy_runs(pool: Pool) -> None:
    deadline = time.monotonic() + 30  # a worker starts late on a loaded machine
    while pool.stats()["heavy"]["running"] == 0:
        assert time.monotonic() < deadline, "the heavy lane never started its job"
        time.sleep(0.02)


def test_a_full_queue_is_busy(pool: Pool, tmp_path: Path) -> None:
    gate = tmp_path / "go"  # the first job runs until the checks are done
    first = pool.submit(wait_for, {"path": str(gate)}, heavy=True, timeout=60)
    _until_heavy_runs(pool)
    waiting = [pool.submit(spin, {"seconds": 0.01}, heavy=True, timeout=30) for _ in range(2)]
    with pytest.raises(Busy):
        pool.submit(spin, {"seconds": 0.01}, heavy=True, timeout=30)
    assert pool.submit(spin, {"seconds": 0.01}, heavy=False, timeout=30).future.result(30)
    gate.write_text("go")
    for job in [first, *waiting]:
        assert job.future.result(60)[0] == "ok"


def test_an_abandoned_job_is_dropped_or_killed(pool: Pool, tmp_path: Path) -> None:
    running = pool.submit(spin, {"seconds": 30}, heavy=True, timeout=60)
    marker = tmp_path / "ran"
    queued = pool.submit(touch, {"path": str(marker)}, heavy=True, timeout=60)
    _until_heavy_runs(pool)
    queued.abandon()
    time.sleep(0.3)
    start = time.monotonic()
    running.abandon()
    with pytest.raises(TimeoutError):  # killed: the future says so, nobody waits for it
        running.future.result(10)
    assert time.monotonic() - start < 5
    assert run(pool, spin, seconds=0.05) == 0.05
    assert queued.future.cancelled() and not marker.exists()


def test_close_kills_the_running_jobs_at_once() -> None:
    p = Pool(fast=1, heavy=1)
    job = p.submit(spin, {"seconds": 30}, heavy=True, timeout=60)
    _until_heavy_runs(p)
    start = time.monotonic()
    p.close()
    assert time.monotonic() - start < 5
    with pytest.raises(TimeoutError):
        job.future.result(5)


def test_an_idle_heavy_worker_helps_the_busy_fast_lane(tmp_path: Path) -> None:
    p = Pool(fast=1, heavy=1, demote_after=60)
    gate = tmp_path / "go"  # the fast lane's job runs until the checks are done
    try:
        heavy_pid = unpack(p.submit(pid, {}, heavy=True, timeout=20).future.result(60))
        busy = p.submit(wait_for, {"path": str(gate)}, heavy=False, timeout=30)
        deadline = time.monotonic() + 30
        while p.stats()["fast"]["running"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        helped = p.submit(pid, {}, heavy=False, timeout=20)
        assert unpack(helped.future.result(60)) == heavy_pid
        assert not busy.future.done()
        gate.write_text("go")
        assert unpack(busy.future.result(60)) == str(gate)
    finally:
        p.close()
