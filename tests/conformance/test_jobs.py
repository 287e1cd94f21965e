"""Creates whose infrastructure work outlasts the request: the request answers
at once, the entity shows `waiting` and its job, then the outcome."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from werkzeug.test import TestResponse

from tests.conftest import COMPUTE_ACTION, STORAGE, Client, category


def wait_for(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def act(client: Client, compute: str, term: str) -> TestResponse:
    """POST a compute action, as text/plain."""
    return client.post_text(f"{compute}?action={term}", [category(COMPUTE_ACTION + term,
                                                                  "action")])


def slow_site(make_app, **settings) -> Client:
    """Every infrastructure operation takes 1.5 s; requests wait 0.1 s for their job."""
    return Client(make_app(simulated_delay_seconds=1.5, job_wait_seconds=0.1, **settings))


def test_a_long_create_answers_at_once_and_shows_its_job(make_app) -> None:
    client = slow_site(make_app)
    started = time.monotonic()
    compute = client.compute()
    assert time.monotonic() - started < 0.5
    shown = client.attributes(compute)
    assert shown["occi.compute.state"] == "waiting"
    assert shown["occi.compute.state.message"] == f"creating {compute}"
    [job] = client.get("/jobs/").get_json()["jobs"]
    assert (job["location"], job["state"], job["operation"]) == (compute, "running", "creating")
    stop = act(client, compute, "stop")
    assert stop.status_code == 409
    wait_for(lambda: client.attributes(compute)["occi.compute.state"] == "active")
    done = client.get(f"/jobs/{job['id']}").get_json()
    assert (done["state"], done["progress"], done["error"]) == ("done", "finished", None)
    assert client.request("DELETE", compute).status_code == 200


def test_a_create_in_progress_can_be_deleted(make_app) -> None:
    """Deleting an entity still being set up cancels its create: the record goes
    at once and the job, finding it gone, undoes what it made, and ends."""
    client = slow_site(make_app)
    compute = client.compute()
    [job] = client.get("/jobs/").get_json()["jobs"]
    assert client.request("DELETE", compute).status_code == 200
    assert client.get(compute).status_code == 404
    wait_for(lambda: client.get(f"/jobs/{job['id']}").get_json()["state"] != "running")


def test_an_action_in_progress_is_waited_for_by_a_delete(make_app) -> None:
    client = slow_site(make_app)
    compute = client.compute()
    wait_for(lambda: client.attributes(compute)["occi.compute.state"] == "active")
    stop = act(client, compute, "stop")
    assert stop.status_code == 200
    assert client.attributes(compute)["occi.compute.state"] == "waiting"
    assert client.request("DELETE", compute).status_code == 200
    wait_for(lambda: client.get(compute).status_code == 404)
    jobs = client.get("/jobs/").get_json()["jobs"]
    assert [(j["operation"], j["state"]) for j in jobs] == [
        ("deleting", "done"), ("stop", "done"), ("creating", "done")]


def test_a_delete_waits_for_the_links_its_resources_create_still_plugs_in(make_app) -> None:
    """The compute shows its outcome while its create's job goes on with its
    links: a delete then waits for that job before it tears the compute down."""
    client = slow_site(make_app)
    network = client.network()
    wait_for(lambda: client.attributes(network)["occi.network.state"] == "active")
    compute = client.compute(f'Link: <{network}>; rel="http://schemas.ogf.org/occi/'
                             'infrastructure#network"')
    wait_for(lambda: client.attributes(compute)["occi.compute.state"] == "active")
    assert client.request("DELETE", compute).status_code == 200
    wait_for(lambda: client.get(compute).status_code == 404)
    jobs = {j["operation"]: j for j in client.get("/jobs/").get_json()["jobs"]
            if j["location"] == compute}
    assert (jobs["creating"]["state"], jobs["deleting"]["state"]) == ("done", "done")
    # The teardown (the interface unplugged and unbound, the guest removed:
    # 6 s here) began once the create's job had ended (3 s after, without waiting).
    ended = {operation: datetime.fromisoformat(job["updated"]).timestamp()
             for operation, job in jobs.items()}
    assert ended["deleting"] - ended["creating"] >= 5.5


def test_a_change_made_while_a_job_works_stays_with_its_outcome(make_app) -> None:
    client = slow_site(make_app)
    compute = client.compute()
    renamed = client.post_text(compute, ['X-OCCI-Attribute: occi.core.title="renamed"'])
    assert renamed.status_code == 200
    assert client.attributes(compute)["occi.compute.state"] == "waiting"
    wait_for(lambda: client.attributes(compute)["occi.compute.state"] == "active")
    assert client.attributes(compute)["occi.core.title"] == "renamed"


def test_a_short_create_answers_with_its_outcome(client: Client) -> None:
    compute = client.compute()  # the simulated infrastructure answers at once
    assert client.attributes(compute)["occi.compute.state"] == "active"
    [job] = client.get("/jobs/?state=done").get_json()["jobs"]
    assert job["location"] == compute


def test_a_refusal_within_the_wait_is_the_answer(make_app) -> None:
    client = Client(make_app(simulated_failures=["unavailable"]))
    response = client.post_text("/storage/", [category(STORAGE, "kind"),
                                              "X-OCCI-Attribute: occi.storage.size=1"])
    assert response.status_code == 503
    assert "Location" not in client.get("/storage/").get_data(as_text=True)
    [job] = client.get("/jobs/").get_json()["jobs"]
    assert job["state"] == "failed" and "unreachable" in job["error"]


def test_a_refusal_after_the_answer_shows_on_the_entity(make_app) -> None:
    client = slow_site(make_app, simulated_failures=["unavailable"])
    storage = client.storage(1.0)
    wait_for(lambda: client.attributes(storage)["occi.storage.state"] == "error")
    assert "unreachable" in client.attributes(storage)["occi.storage.state.message"]
    # A delete that outlasts the wait is answered at once; still unreachable, its
    # job gives up and the volume stays as it was.
    assert client.request("DELETE", storage).status_code == 200
    wait_for(lambda: client.attributes(storage)["occi.storage.state"] != "waiting")
    assert "unreachable" in client.attributes(storage)["occi.storage.state.message"]
    assert storage in client.get("/storage/").get_data(as_text=True)
    deleting = [j for j in client.get("/jobs/").get_json()["jobs"]
                if j["operation"] == "deleting"]
    assert [(j["state"], "unreachable" in j["error"]) for j in deleting] == [("failed", True)]


def test_links_created_with_a_compute_wait_for_it(make_app) -> None:
    client = slow_site(make_app)
    network = client.network()
    wait_for(lambda: client.attributes(network)["occi.network.state"] == "active")
    compute = client.compute(f'Link: <{network}>; rel="http://schemas.ogf.org/occi/'
                             'infrastructure#network"')
    [link] = client.json(compute)["links"]
    assert link["attributes"]["occi.networkinterface.state"] == "waiting"
    wait_for(lambda: client.json(compute)["links"][0]["attributes"][
        "occi.networkinterface.state"] == "active")
    assert client.attributes(compute)["occi.compute.state"] == "active"


def test_jobs_listing_is_checked(client: Client) -> None:
    assert client.get("/jobs/?state=lost").status_code == 400
    assert client.get("/jobs/?limit=0").status_code == 400
    assert client.get("/jobs/nothing").status_code == 404


BACKUP = category("http://schemas.ogf.org/occi/infrastructure/storage/action#backup", "action")


def test_a_backup_is_a_job_and_the_answer_shows_its_outcome(make_app) -> None:
    quick = Client(make_app(simulated_delay_seconds=0.2))
    storage = quick.storage(1.0)
    response = quick.post_text(f"{storage}?action=backup", [BACKUP], accept="application/json")
    assert response.status_code == 200
    assert response.get_json()["attributes"]["occi.storage.state"] == "online"  # done in time
    assert "backed up" in response.get_json()["attributes"]["occi.storage.state.message"]


def test_a_long_backup_shows_waiting_then_online(make_app) -> None:
    client = slow_site(make_app)
    storage = client.storage(1.0)
    wait_for(lambda: client.attributes(storage)["occi.storage.state"] == "online")
    response = client.post_text(f"{storage}?action=backup", [BACKUP], accept="application/json")
    assert response.get_json()["attributes"]["occi.storage.state"] == "waiting"
    wait_for(lambda: client.attributes(storage)["occi.storage.state"] == "online")
    assert "backed up" in client.attributes(storage)["occi.storage.state.message"]


def test_a_refused_backup_leaves_the_volume_as_it_was(make_app) -> None:
    client = Client(make_app())
    storage = client.storage(1.0)
    service = client.app.extensions["occi.service"]
    service.backends.storage.failures.names = frozenset({"unavailable"})
    response = client.post_text(f"{storage}?action=backup", [BACKUP])
    assert response.status_code == 503
    service.backends.storage.failures.names = frozenset()
    assert client.attributes(storage)["occi.storage.state"] == "online"


def test_a_long_snapshot_is_a_waiting_copy_until_done(make_app) -> None:
    client = slow_site(make_app)
    storage = client.storage(1.0)
    wait_for(lambda: client.attributes(storage)["occi.storage.state"] == "online")
    response = client.post_text(f"{storage}?action=snapshot", [category(
        "http://schemas.ogf.org/occi/infrastructure/storage/action#snapshot", "action")],
        accept="application/json")
    copy = response.get_json()
    assert copy["attributes"]["occi.storage.state"] == "waiting"
    assert client.attributes(storage)["occi.storage.state"] == "online"  # the original serves
    wait_for(lambda: client.attributes(f"/storage/{copy['id']}")["occi.storage.state"]
             == "online")


def test_a_long_save_names_its_os_template_at_once(make_app) -> None:
    client = slow_site(make_app)
    compute = client.compute()
    wait_for(lambda: client.attributes(compute)["occi.compute.state"] == "active")
    response = act(client, compute, "save")
    term = response.get_data(as_text=True).split(";")[0].split()[-1]
    assert term.startswith("saved-")
    assert client.attributes(compute)["occi.compute.state"] == "waiting"
    assert f"Category: {term};" not in client.get("/-/").get_data(as_text=True)  # not yet
    wait_for(lambda: client.attributes(compute)["occi.compute.state"] == "active")
    assert f"Category: {term};" in client.get("/-/").get_data(as_text=True)


def test_a_job_that_breaks_ends_and_leaves_its_entity_deletable(make_app,
                                                                 monkeypatch) -> None:
    """Whatever goes wrong in a job (here: storing its outcome fails, as a name
    taken meanwhile would make it), the job ends as failed, its entity shows
    error, and the entity can be deleted."""
    from occi_server.errors import Conflict
    from occi_server.store import Repository

    client = Client(make_app())
    compute = client.compute()

    def taken(*_args, **_kwargs) -> None:
        raise Conflict("the name was taken meanwhile")

    monkeypatch.setattr(Repository, "insert_mixin", taken)
    act(client, compute, "save")
    wait_for(lambda: client.attributes(compute)["occi.compute.state"] != "waiting")
    shown = client.attributes(compute)
    assert shown["occi.compute.state"] == "error"
    assert "taken meanwhile" in shown["occi.compute.state.message"]
    [job] = [j for j in client.get("/jobs/").get_json()["jobs"] if j["operation"] == "saving"]
    assert job["state"] == "failed" and "taken meanwhile" in job["error"]
    assert client.request("DELETE", compute).status_code == 200


def test_a_resize_runs_in_a_job_and_a_refusal_puts_everything_back(make_app) -> None:
    client = slow_site(make_app)
    volume = client.storage(1.0)
    wait_for(lambda: client.attributes(volume)["occi.storage.state"] == "online")
    assert client.post_text(volume, ["X-OCCI-Attribute: occi.storage.size=2.0"]
                            ).status_code == 200
    assert client.attributes(volume)["occi.storage.state"] == "waiting"
    wait_for(lambda: client.attributes(volume)["occi.storage.state"] == "online")
    assert client.attributes(volume)["occi.storage.size"] == 2.0
    refusing = slow_site(make_app, simulated_failures=["storage.update"])
    assert refusing.post_text(volume, ["X-OCCI-Attribute: occi.storage.size=3.0",
                                       'X-OCCI-Attribute: occi.core.title="bigger"']
                              ).status_code == 200  # answered before the refusal came
    wait_for(lambda: refusing.attributes(volume)["occi.storage.state"] != "waiting")
    shown = refusing.attributes(volume)
    assert (shown["occi.storage.state"], shown["occi.storage.size"]) == ("online", 2.0)
    assert "occi.core.title" not in shown
    assert shown["occi.storage.state.message"].startswith("refused: ")


def test_prefer_wait_holds_the_answer_until_the_job_is_done(make_app) -> None:
    """RFC 7240: `Prefer: wait=N` trades the short default wait for up to N
    seconds, so one step can follow the other without polling."""
    client = slow_site(make_app, job_wait_max_seconds=3)
    lines = [category("http://schemas.ogf.org/occi/infrastructure#compute", "kind")]
    waited = client.http.post("/compute/", data="\n".join(lines) + "\n", headers={
        "Content-Type": "text/plain", "Prefer": "wait=60"})
    assert waited.status_code == 201 and waited.headers["Preference-Applied"] == "wait=3"
    compute = waited.headers["Location"].removeprefix("http://localhost")
    assert client.attributes(compute)["occi.compute.state"] == "active"
    stopped = client.http.post(f"{compute}?action=stop", headers={
        "Content-Type": "text/plain", "Prefer": "return=minimal, wait=5"})
    assert stopped.status_code == 200 and stopped.headers["Preference-Applied"] == "wait=3"
    assert client.attributes(compute)["occi.compute.state"] == "inactive"
    assert act(client, compute, "start").status_code == 200  # not 409: nothing is waiting


def test_prefer_respond_async_answers_at_once(make_app) -> None:
    client = Client(make_app(simulated_delay_seconds=1.5, job_wait_seconds=10))
    lines = [category("http://schemas.ogf.org/occi/infrastructure#compute", "kind")]
    started = time.monotonic()
    answered = client.http.post("/compute/", data="\n".join(lines) + "\n", headers={
        "Content-Type": "text/plain", "Prefer": "respond-async"})
    assert time.monotonic() - started < 1.0
    assert answered.status_code == 201 and answered.headers["Preference-Applied"] == \
        "respond-async"
    compute = answered.headers["Location"].removeprefix("http://localhost")
    assert client.attributes(compute)["occi.compute.state"] == "waiting"
    wait_for(lambda: client.attributes(compute)["occi.compute.state"] == "active")
    plain = client.get(compute)
    assert "Preference-Applied" not in plain.headers  # a read has no job to wait for


def test_prefer_wait_zero_is_applied_as_asked(make_app) -> None:
    client = slow_site(make_app)
    lines = [category("http://schemas.ogf.org/occi/infrastructure#compute", "kind")]
    answered = client.http.post("/compute/", data="\n".join(lines) + "\n", headers={
        "Content-Type": "text/plain", "Prefer": "wait=0"})
    assert answered.status_code == 201 and answered.headers["Preference-Applied"] == "wait=0"


def test_a_preference_not_understood_is_ignored(make_app) -> None:
    client = slow_site(make_app)
    lines = [category("http://schemas.ogf.org/occi/infrastructure#compute", "kind")]
    for prefer in ("wait=soon", "wait=-1", "handling=strict", "wait=99999999999"):
        answered = client.http.post("/compute/", data="\n".join(lines) + "\n", headers={
            "Content-Type": "text/plain", "Prefer": prefer})
        assert answered.status_code == 201, prefer
        assert "Preference-Applied" not in answered.headers, prefer


def test_a_create_writes_once_for_the_request_and_once_for_its_job(
        make_app, monkeypatch) -> None:
    client = slow_site(make_app)
    network = client.network()
    wait_for(lambda: client.attributes(network)["occi.network.state"] == "active")
    store = client.app.extensions["occi.store"]
    writes: list[str] = []
    transaction = store.transaction

    def counted(*, write: bool, **kwargs):
        if write:
            writes.append(threading.current_thread().name)
        return transaction(write=write, **kwargs)

    monkeypatch.setattr(store, "transaction", counted)
    compute = client.compute()
    [job] = [j for j in client.get("/jobs/").get_json()["jobs"] if j["location"] == compute]
    assert (job["state"], job["progress"]) == ("running", f"creating {compute}")
    wait_for(lambda: client.get(f"/jobs/{job['id']}").get_json()["state"] == "done")
    assert len(writes) == 2 and writes[1].startswith("occi-job-")  # the request's, the job's
    assert client.attributes(compute)["occi.compute.state"] == "active"
    with_link = client.compute(f'Link: <{network}>; rel="http://schemas.ogf.org/occi/'
                               'infrastructure#network"')
    [job] = [j for j in client.get("/jobs/").get_json()["jobs"] if j["location"] == with_link]
    wait_for(lambda: client.get(f"/jobs/{job['id']}").get_json()["state"] == "done")
    done = client.get(f"/jobs/{job['id']}").get_json()
    assert (done["progress"], done["error"]) == ("finished", None)
    assert client.json(with_link)["links"][0]["attributes"][
        "occi.networkinterface.state"] == "active"
