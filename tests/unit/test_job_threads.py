"""The threads jobs run in (service/workers.py): reused when idle, never a
queue behind a slow job, gone after a while idle, fresh in a forked child."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time

import pytest

from occi_server.service.workers import JobThreads


def ran_in(threads: JobThreads, work=lambda: None) -> int:  # type: ignore[no-untyped-def]
    """The ident of the thread that ran `work`, once it has."""
    seen: list[int] = []
    done = threading.Event()

    def job() -> None:
        try:
            work()
        finally:
            seen.append(threading.get_ident())
            done.set()

    threads.run(job)
    assert done.wait(10)
    return seen[0]


def alive(prefix: str = "occi-job-") -> int:
    return sum(thread.name.startswith(prefix) for thread in threading.enumerate())


def test_an_idle_thread_takes_the_next_job() -> None:
    threads = JobThreads()
    first = ran_in(threads)
    time.sleep(0.05)  # back to waiting
    assert {ran_in(threads) for _ in range(20)} == {first}


def test_a_job_never_waits_behind_a_slow_one() -> None:
    threads = JobThreads()
    release = threading.Event()
    threads.run(lambda: release.wait(10))
    began = time.monotonic()
    ran_in(threads)
    assert time.monotonic() - began < 1
    release.set()


def test_threads_idle_for_a_while_end() -> None:
    threads = JobThreads(idle_seconds=0.2)
    before = alive()
    release = threading.Event()
    for _ in range(3):
        threads.run(lambda: release.wait(10))
    assert alive() == before + 3
    release.set()
    deadline = time.monotonic() + 5
    while alive() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive() == before
    ran_in(threads)  # and one starts again when needed


def test_a_defect_in_a_job_is_logged_and_its_thread_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    threads = JobThreads()
    broke_in: list[int] = []

    def broken() -> None:
        broke_in.append(threading.get_ident())
        raise RuntimeError("a defect")

    with caplog.at_level(logging.ERROR):
        threads.run(broken)
        time.sleep(0.2)
    assert "a job ended by a defect" in caplog.text
    assert ran_in(threads) == broke_in[0]


def test_a_forked_child_runs_jobs_in_threads_of_its_own() -> None:
    threads = JobThreads()
    ran_in(threads)  # the parent has an idle thread, which the child does not inherit
    forked = multiprocessing.get_context("fork")
    ran = forked.Event()
    child = forked.Process(target=lambda: threads.run(ran.set) or ran.wait(5))
    child.start()
    child.join(10)
    assert ran.is_set()
