"""The site's pages in a real headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) against a real `occi-server serve` on
loopback: sign in, upload a signed entry, find it, start a machine from the
image it endorses, stop it, attach a volume; at desktop and phone widths.
Screenshots are kept in test-artifacts/ (the docs show them)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.security import generate_password_hash

from occi_server.marketplace.entries import checksums_of, new_metadata
from occi_server.marketplace.signing import sign
from tests.integration.test_serve import Server
from tests.support.pki import issue

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not CHROMIUM or not DRIVER,
                                reason="chromium and chromium-driver are not installed "
                                       "(scripts/setup.sh --test installs them)")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BASIC = ("alice", "alice-pw")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """A site with 30 entries already, and an image file whose entry the test uploads."""
    ca = issue("Site CA", ca=True, days=365)
    endorsers = {"Alice": issue("Alice", ca), "Bob": issue("Bob", ca)}
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "ca.pem").write_bytes(ca.cert_pem)
    image = tmp_path / "analysis.img"
    image.write_bytes(b"the analysis image" * 512)
    entry = tmp_path / "analysis-entry.json"
    entry.write_text(json.dumps(sign(new_metadata(
        image, title="Analysis image", valid_days=90, os="linux", os_version="12",
        description="Debian 12 with <b>numpy</b> and the lab's tools",
        endorser_name="Alice Endorser", endorser_email="alice@example.org"),
        endorsers["Alice"].key_pem, [endorsers["Alice"].cert_pem])))
    running = Server(tmp_path / "data")
    running.start(
        workers=2, auth="basic", marketplace_ca_dir=str(tmp_path / "ca"),
        users=json.dumps({BASIC[0]: {"password_hash": generate_password_hash(BASIC[1]),
                                     "tenants": ["physics"]}}),
        simulated_images=json.dumps([
            {"term": "analysis", "title": "Analysis image", "login_user": "debian",
             "sha256": checksums_of(image)["sha256"]},
            {"term": "debian-12", "title": "Debian 12 (simulated image)"}]))
    try:
        for n in range(30):
            made = tmp_path / f"image-{n:02d}.img"
            made.write_bytes(f"image number {n}".encode() * 64)
            name = "Alice" if n % 3 else "Bob"
            metadata = new_metadata(made, title=f"Image {n:02d}", valid_days=30 + n,
                                    os="linux", os_version=f"{n}",
                                    kind="disk" if n == 7 else "machine",
                                    description=f"<b>number {n}</b>",
                                    endorser_name=f"{name} Endorser",
                                    endorser_email=f"{name.lower()}@example.org")
            response = requests.post(
                f"{running.url}/marketplace/api/entries", auth=BASIC, timeout=30,
                data=json.dumps(sign(metadata, endorsers[name].key_pem,
                                     [endorsers[name].cert_pem])),
                headers={"Content-Type": "application/json"})
            assert response.status_code == 201, response.text
        yield running, entry
    finally:
        running.stop()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER),
                              options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def rows(browser, table: str) -> list[list[str]]:
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in browser.find_elements(By.CSS_SELECTOR, f"#{table} tr")]


def shot(browser, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def click(browser, selector: str) -> None:
    """Click and wait for the next page (every form here answers with a page)."""
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, selector).click()
    WebDriverWait(browser, 15).until(lambda b: old != b.find_element(By.TAG_NAME, "html"))


def fits(browser) -> bool:
    """Nothing makes the page itself scroll sideways (wide tables scroll in their box)."""
    return browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")


def test_a_scientists_morning_in_the_browser(site: tuple[Server, Path], browser) -> None:
    server, entry = site
    browser.get(f"{server.url}/my/")
    assert "/my/sign-in" in browser.current_url
    browser.find_element(By.ID, "user").send_keys(BASIC[0])
    browser.find_element(By.ID, "password").send_keys("wrong")
    click(browser, "#sign-in")
    assert "wrong user name or password" in browser.find_element(By.ID, "refused").text
    browser.find_element(By.ID, "user").send_keys(BASIC[0])
    browser.find_element(By.ID, "password").send_keys(BASIC[1])
    click(browser, "#sign-in")
    assert browser.current_url == f"{server.url}/my/"

    # The marketplace: show N, filter, status, sort, pages; the endorser as people read it.
    browser.get(f"{server.url}/marketplace/")
    assert len(rows(browser, "entries")) == 25
    assert browser.find_element(By.ID, "shown").text == "1\u201325 of 30"
    assert rows(browser, "entries")[0][1] == "Image 29"
    assert rows(browser, "entries")[0][2] == "Alice Endorser <alice@example.org>"
    assert rows(browser, "entries")[0][6] == "<b>number 29</b>"  # text, never markup
    click_select = Select(browser.find_element(By.ID, "limit"))
    old = browser.find_element(By.TAG_NAME, "html")
    click_select.select_by_visible_text("10")  # applied at once by the page's script
    WebDriverWait(browser, 10).until(lambda b: old != b.find_element(By.TAG_NAME, "html"))
    assert len(rows(browser, "entries")) == 10
    click(browser, "#next")
    assert browser.find_element(By.ID, "shown").text == "11\u201320 of 30"
    browser.find_element(By.ID, "filter").send_keys("Bob")
    click(browser, "#apply")
    assert {r[2] for r in rows(browser, "entries")} == {"Bob Endorser <bob@example.org>"}
    shot(browser, "marketplace")

    # Upload the analysis image's entry and find it.
    browser.get(f"{server.url}/marketplace/upload")
    browser.find_element(By.ID, "file").send_keys(str(entry))
    click(browser, "#upload")
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict.startswith("Accepted: Analysis image"), verdict
    shot(browser, "upload")
    browser.find_element(By.LINK_TEXT, "Analysis image").click()
    WebDriverWait(browser, 10).until(lambda b: "/marketplace/images/" in b.current_url)
    assert "os_tpl#analysis" in browser.find_element(By.ID, "os-tpl").text
    shot(browser, "image")
    browser.get(f"{server.url}/marketplace/endorsers")
    assert [r[:3] for r in rows(browser, "endorsers")] == [
        ["Alice Endorser\nalice@example.org", "21", "valid"],
        ["Bob Endorser\nbob@example.org", "10", "valid"]]

    # A network and a volume, then a machine from the endorsed image.
    browser.get(f"{server.url}/my/")
    browser.find_element(By.ID, "network-title").send_keys("lab")
    browser.find_element(By.ID, "network-address").send_keys("10.61.0.0/24")
    click(browser, "#create-network")
    browser.find_element(By.ID, "volume-title").send_keys("results")
    click(browser, "#create-volume")
    click(browser, "#new-machine")
    Select(browser.find_element(By.ID, "image")).select_by_visible_text(
        "Analysis image \u2014 endorsed by CN=Alice,O=occi-server tests")
    Select(browser.find_element(By.ID, "network")).select_by_visible_text("lab (10.61.0.0/24)")
    browser.find_element(By.ID, "title").send_keys("morning run")
    browser.find_element(By.ID, "ssh-key").send_keys(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx4 alice@laptop")
    browser.find_element(By.ID, "user-data").send_keys("#cloud-config\nruncmd: [touch /ok]\n")
    click(browser, "#start-machine")
    WebDriverWait(browser, 15).until(
        lambda b: b.find_element(By.ID, "state").text == "active" or b.refresh())
    ssh = browser.find_element(By.ID, "ssh").text
    assert ssh.startswith("ssh debian@10.61.0."), ssh
    machine = browser.current_url

    Select(browser.find_element(By.ID, "attach-volume")).select_by_visible_text(
        "results (1.0 GiB)")
    click(browser, "#attach")
    assert rows(browser, "attached")[0][0] == "results"
    click(browser, ".action-stop")
    WebDriverWait(browser, 15).until(
        lambda b: b.find_element(By.ID, "state").text == "inactive" or b.refresh())
    assert browser.current_url == machine
    shot(browser, "machine")

    # What the pages did is what OCCI says.
    location = machine.replace("/my", "")
    rendering = requests.get(location, auth=BASIC, timeout=30,
                             headers={"Accept": "application/occi+json"}).json()
    assert rendering["attributes"]["occi.compute.state"] == "inactive"
    assert rendering["attributes"]["occi.core.title"] == "morning run"
    assert any(link["kind"].endswith("#storagelink") for link in rendering["links"])

    browser.get(f"{server.url}/my/")
    assert rows(browser, "machines")[0][:2] == ["morning run", "inactive"]
    assert rows(browser, "volumes")[0][3] == "morning run"
    assert fits(browser)
    shot(browser, "overview")
    browser.set_window_size(390, 844)  # a phone
    for page in ("/my/", machine, "/marketplace/"):
        browser.get(page if page.startswith("http") else server.url + page)
        assert fits(browser), page
    browser.get(f"{server.url}/my/")
    shot(browser, "overview-phone")
