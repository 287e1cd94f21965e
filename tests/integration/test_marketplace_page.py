"""The marketplace's web page in a real headless Chromium (Debian's chromium
and chromium-driver, driven by Selenium) against a real server on loopback.
A screenshot is kept in test-artifacts/marketplace.png."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from occi_server.marketplace.entries import new_metadata
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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    ca = issue("Site CA", ca=True, days=365)
    alice, bob = issue("Alice", ca), issue("Bob", ca)
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "ca.pem").write_bytes(ca.cert_pem)
    running = Server(tmp_path / "data")
    running.start(workers=1, marketplace_ca_dir=str(tmp_path / "ca"))
    try:
        for n in range(30):
            image = tmp_path / f"image-{n:02d}.img"
            image.write_bytes(f"image number {n}".encode() * 64)
            signer = alice if n % 3 else bob
            metadata = new_metadata(image, title=f"Image {n:02d}", valid_days=30 + n,
                                    os="linux", os_version=f"{n}", kind="disk" if n == 7
                                    else "machine", description=f"<b>number {n}</b>",
                                    endorser_name=f"{'Alice' if n % 3 else 'Bob'} Endorser")
            response = requests.post(f"{running.url}/marketplace/api/entries", timeout=30,
                                     data=json.dumps(sign(metadata, signer.key_pem,
                                                          [signer.cert_pem])),
                                     headers={"Content-Type": "application/json"})
            assert response.status_code == 201, response.text
            if n == 11:
                identifier = response.json()["identifier"]
                requests.post(f"{running.url}/marketplace/api/entries/{identifier}/deprecate",
                              timeout=30)
        yield running
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
    yield driver
    driver.quit()


def rows(browser) -> list[list[str]]:
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in browser.find_elements(By.CSS_SELECTOR, "#entries tr")]


def settle(browser, change, until=lambda table: True) -> None:
    """Do something on the page and wait until the table is drawn again and
    shows what `until` expects (typing redraws it once per key)."""
    before = browser.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
    change()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(
        By.TAG_NAME, "body").get_attribute("data-loaded") not in (None, before)
        and until(rows(b)))


def test_the_page_lists_filters_sorts_and_details(server: Server, browser) -> None:
    browser.get(f"{server.url}/marketplace/")
    WebDriverWait(browser, 10).until(lambda b: len(rows(b)) > 0)
    assert len(rows(browser)) == 25  # "show 25 entries" by default, newest first
    assert browser.find_element(By.ID, "shown").text == "1\u201325 of 30"
    assert rows(browser)[0][1] == "Image 29"
    settle(browser, lambda: Select(browser.find_element(By.ID, "limit")).select_by_visible_text(
        "10"))
    assert len(rows(browser)) == 10
    settle(browser, lambda: browser.find_element(By.ID, "next").click())
    assert browser.find_element(By.ID, "shown").text == "11\u201320 of 30"
    settle(browser, lambda: Select(browser.find_element(By.ID, "sort")).select_by_value("title"))
    assert [r[1] for r in rows(browser)] == [f"Image {n:02d}" for n in range(10)]
    settle(browser, lambda: Select(browser.find_element(By.ID, "status")).select_by_value(
        "deprecated"))
    assert [(r[0], r[1]) for r in rows(browser)] == [("deprecated", "Image 11")]
    settle(browser, lambda: Select(browser.find_element(By.ID, "status")).select_by_value(""))
    settle(browser, lambda: browser.find_element(By.ID, "filter").send_keys("Bob"),
           until=lambda table: {r[2] for r in table} == {"Bob Endorser"})
    assert len(rows(browser)) == 10
    browser.find_element(By.ID, "filter").clear()
    settle(browser, lambda: browser.find_element(By.ID, "filter").send_keys("Image 07"),
           until=lambda table: len(table) == 1)
    [row] = rows(browser)
    assert row[5] == "disk"
    browser.find_element(By.CSS_SELECTOR, "#entries tr").click()
    details = browser.find_element(By.ID, "details")
    WebDriverWait(browser, 5).until(lambda b: details.is_displayed())
    assert "<b>number 7</b>" in details.text  # shown as text, never as markup
    assert "SHA256" in details.text and "CN=Alice,O=occi-server tests" in details.text
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "marketplace.png"))
