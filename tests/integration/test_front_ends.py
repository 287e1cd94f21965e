"""Two real front ends (`occi-server serve`) on one private PostgreSQL:
creates spread over both, one front end killed (kill -9) while its jobs are
at work; the other takes those jobs over within seconds (each create ends
running or in a clean `error`, no job stays running) and the reconciler's
lease moves to it; a real guest made by a front end that died is found
running; rate limits count across both."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, create_engine, select

from occi_server.store.tables import entities, leases
from tests.integration.test_crash_recovery import (
    INFRA,
    SETTINGS,
    SITE,
    create_guest,
    domains,
    settle,
)
from tests.integration.test_libvirt import remove_guests
from tests.integration.test_serve import Server, create
from tests.support.libvirt import add_halting_image, link_images, reachable_dir
from tests.support.libvirt import unavailable_reason as libvirt_unavailable
from tests.support.postgres import find_bin, private_cluster


@pytest.fixture
def database() -> Iterator[str]:
    if not find_bin("initdb"):
        pytest.skip("PostgreSQL server binaries are not installed")
    with private_cluster() as url:
        yield url


def computes(server: Server) -> dict[str, dict]:
    listed = requests.get(server.url + "/compute/", timeout=30,
                          headers={"Accept": "application/occi+json"}).json()
    return {"/compute/" + resource["id"]: resource["attributes"]
            for resource in listed.get("resources", [])}


def running_jobs(server: Server) -> list[dict]:
    return requests.get(server.url + "/jobs/?state=running", timeout=30).json()["jobs"]


def compute_records(engine: Engine) -> dict[str, str]:
    """Each stored compute's key (which names its domain) and state."""
    with engine.connect() as connection:
        return {key: state for key, state in connection.execute(
            select(entities.c.key, entities.c.attributes["occi.compute.state"].as_string())
            .where(entities.c.kind == INFRA + "compute"))}


def reconciler_pid(engine: Engine) -> int:
    """The pid of the process holding the reconciler's lease (0: none)."""
    with engine.connect() as connection:
        holder = connection.execute(select(leases.c.holder).where(
            leases.c.name == "reconciler")).scalar()
    return int((holder or "::").split(":")[1] or 0)


def test_a_killed_front_ends_jobs_are_taken_over(tmp_path: Path, database: str) -> None:
    settings = {"database_url": database, "reconcile_seconds": "1", "lease_seconds": "2",
                "simulated_delay_seconds": "3", "job_wait_seconds": "0.1",
                "quotas": json.dumps({"default": {"instances": -1, "cores": -1,
                                                  "memory": -1}})}
    first, second = Server(tmp_path / "first"), Server(tmp_path / "second")
    first.start(workers=2, **settings)
    second.start(workers=2, **settings)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda n: create((first, second)[n % 2].url, f"vm{n}"),
                                    range(24)))
        assert [a.status_code for a in answers] == [201] * 24
        made_by_first = {a.headers["Location"].removeprefix(first.url) for a in answers[0::2]}
        first.kill()  # its 12 jobs are at work (each takes 3 s)

        deadline = time.monotonic() + 30
        while running_jobs(second) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert running_jobs(second) == []
        states = {location: attributes["occi.compute.state"]
                  for location, attributes in computes(second).items()}
        assert len(states) == 24  # no record lost
        assert Counter(states.values()) == {"active": 12, "error": 12}
        assert {location for location, state in states.items() if state == "error"} == \
            made_by_first
        failed = requests.get(second.url + "/jobs/?state=failed", timeout=30).json()["jobs"]
        assert len(failed) == 12
        assert all(job["error"] == "the front end doing it stopped" for job in failed)

        engine = create_engine(database)
        assert reconciler_pid(engine) in second.worker_pids()
        second.stop()  # a clean stop hands the lease on at once
        assert reconciler_pid(engine) == 0
        engine.dispose()
    finally:
        second.stop()
        first.kill()


def test_rate_limits_count_across_front_ends(tmp_path: Path, database: str) -> None:
    settings = {"database_url": database, "rate_limit_anonymous": "5/minute",
                "reconcile_seconds": "0"}
    first, second = Server(tmp_path / "first"), Server(tmp_path / "second")
    first.start(workers=1, **settings)
    second.start(workers=1, **settings)
    try:
        if time.time() % 60 > 50:  # all six requests in one window of the minute
            time.sleep(60.5 - time.time() % 60)
        statuses = [requests.get((first, second)[n % 2].url + "/compute/", timeout=30)
                    .status_code for n in range(6)]
        # three to each: within either's own count of 5, over the site's
        assert statuses[-1] == 429, statuses
    finally:
        first.stop()
        second.stop()


@pytest.mark.skipif(libvirt_unavailable() is not None, reason=libvirt_unavailable() or "")
def test_a_real_guest_made_by_a_front_end_that_died_is_taken_over(database: str) -> None:
    """The first front end dies (kill -9) right after its job made a real guest and
    before it stored the outcome; the second finds the guest running and says so."""
    data = reachable_dir("occi-fronts-")
    link_images(data)
    settings = {**SETTINGS, "database_url": database, "lease_seconds": "2",
                "site_scheme": SITE}
    dying, survivor = Server(data), Server(data)  # one host: its images and instances
    dying.start(workers=1, crash_at="create.provisioned", **settings)
    survivor.start(workers=1, **settings)
    engine = create_engine(database)
    try:
        with pytest.raises(requests.ConnectionError):  # the front end died mid-request
            create_guest(dying)
        dying.kill()
        [made] = domains(data)  # its job had made the guest
        # taken over, the real state read back
        settle(lambda: compute_records(engine) == {made: "active"})
        [job] = requests.get(survivor.url + "/jobs/", timeout=30).json()["jobs"]
        assert (job["state"], job["progress"]) == (
            "done", "finished by another process (the front end doing it stopped)")

        assert create_guest(survivor).status_code == 201  # the survivor goes on working
        # no guest without a record, nor the reverse
        assert set(compute_records(engine)) == domains(data)
        for location in requests.get(survivor.url + "/compute/", timeout=30, headers={
                "Accept": "text/uri-list"}).text.split():
            assert requests.delete(location, timeout=120).status_code == 200
        assert domains(data) == set() and compute_records(engine) == {}
    finally:
        survivor.stop()
        dying.kill()
        engine.dispose()
        remove_guests(data)
        shutil.rmtree(data, ignore_errors=True)


def test_actions_on_one_compute_through_both_front_ends_take_turns(tmp_path: Path,
                                                                   database: str) -> None:
    """Ten stops sent at once to two front ends: one is done, the nine others see
    it (409), as on one front end; never two jobs on one guest."""
    settings = {"database_url": database, "reconcile_seconds": "0",
                "simulated_delay_seconds": "1", "job_wait_seconds": "0"}
    first, second = Server(tmp_path / "first"), Server(tmp_path / "second")
    first.start(workers=2, **settings)
    second.start(workers=2, **settings)
    try:
        location = create(first.url, "shared").headers["Location"].removeprefix(first.url)
        deadline = time.monotonic() + 10
        while running_jobs(first) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop = ('Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/'
                'action#"; class="action"\n')

        def stop_through(n: int) -> int:
            server = (first, second)[n % 2]
            return requests.post(f"{server.url}{location}?action=stop", data=stop, timeout=30,
                                 headers={"Content-Type": "text/plain"}).status_code
        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(stop_through, range(10)))
        assert sorted(statuses) == [200] + [409] * 9, statuses
        jobs = requests.get(first.url + "/jobs/", timeout=30).json()["jobs"]
        assert [job["operation"] for job in jobs].count("stop") == 1
    finally:
        first.stop()
        second.stop()


@pytest.mark.skipif(libvirt_unavailable() is not None, reason=libvirt_unavailable() or "")
def test_two_hundred_real_guests_over_two_front_ends_one_killed_midway(database: str) -> None:
    """200 creates of real guests spread over two front ends (two workers each);
    the first is killed (kill -9) once a third have been answered, and what was
    sent to it goes to the other, as a load balancer would send it. Every 201
    ends in a running guest or a clean `error`; no guest without a record, no
    running record without its guest, one create job per record, the tenant's
    quota usage what it holds; the reconciler's lease is the survivor's."""
    libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
    data = reachable_dir("occi-fronts-")
    image = add_halting_image(link_images(data))
    settings = {**SETTINGS, "database_url": database, "lease_seconds": "2",
                "site_scheme": SITE, "orphans": "report",
                "job_wait_seconds": "1",
                # 200 halting guests on 2 cores: placement must let them all in.
                "cpu_ratio": "128",
                "quotas": json.dumps({"default": {"instances": -1, "cores": -1,
                                                  "memory": -1}})}
    first, second = Server(data), Server(data)  # one host: its images and instances
    first.start(workers=2, **settings)
    second.start(workers=2, **settings)
    engine = create_engine(database)
    answered: list[int] = []

    def create_through(n: int) -> requests.Response:
        server = (first, second)[n % 2]
        try:
            response = create_guest(server, image, memory=0.0625)
        except requests.ConnectionError:  # killed: the balancer sends it to the other
            response = create_guest(second, image, memory=0.0625)
        answered.append(response.status_code)
        return response
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            futures = [pool.submit(create_through, n) for n in range(200)]
            while len(answered) < 66:
                time.sleep(0.05)
            first.kill()
            answers = [future.result() for future in futures]
        assert Counter(a.status_code for a in answers) == {201: 200}
        made = {a.headers["Location"].split("/compute/")[1] for a in answers}

        settle(lambda: not running_jobs(second), timeout=300)
        attributes = {location.removeprefix("/compute/"): values
                      for location, values in computes(second).items()}
        assert made <= set(attributes)  # every 201 has its record
        assert {values["occi.compute.state"] for values in attributes.values()} <= \
            {"active", "error"}
        for values in attributes.values():
            if values["occi.compute.state"] == "error":
                assert "front end doing it stopped" in values["occi.compute.state.message"]

        stored = compute_records(engine)
        assert domains(data) <= set(stored)  # no guest without a record
        connection = libvirt.open("qemu:///system")
        running = {d.name().removeprefix("occi-") for d in connection.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
        assert {key for key, state in stored.items() if state == "active"} <= running

        jobs = requests.get(second.url + "/jobs/?limit=1000", timeout=30).json()["jobs"]
        creates = Counter(job["location"] for job in jobs if job["operation"] == "creating")
        assert set(creates.values()) == {1} and len(creates) == len(stored)  # none ran twice
        # The tenant's usage, kept by both front ends' writes, is what it holds.
        usage = requests.get(second.url + "/api/quota", timeout=30).json()["quotas"]
        assert (usage["instances"]["usage"], usage["memory"]["usage"]) == (
            len(attributes), pytest.approx(sum(v["occi.compute.memory"]
                                               for v in attributes.values())))

        # the lease moved, if the first held it
        settle(lambda: reconciler_pid(engine) in second.worker_pids())
    finally:
        second.kill()
        first.kill()
        engine.dispose()
        remove_guests(data)
        shutil.rmtree(data, ignore_errors=True)
