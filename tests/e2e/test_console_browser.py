"""The web console, /docs and /redoc in headless Chromium (Debian's chromium + chromium-driver, driven by
selenium) against a live `stratus serve`: sign in, upload a CSV, start training and watch the curve move;
every page on a phone-sized screen; the docs render with no request leaving the machine. Screenshots of
each page are kept under tests/artifacts/screenshots (or $STRATUS_SCREENSHOT_DIR)."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ServeProcess

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(
    os.environ.get("STRATUS_SCREENSHOT_DIR")
    or Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
)

webdriver = pytest.importorskip("selenium.webdriver")
if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip("chromium and chromium-driver are not installed (make browser)", allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def _browser(width: int, height: int) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        # Anything but this machine fails to resolve: the pages must need nothing from outside.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = _browser(1280, 900)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def phone() -> Iterator[WebDriver]:
    driver = _browser(390, 844)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def _wait(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 60) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def _requested_urls(driver: WebDriver) -> list[str]:
    """Every URL the page asked for since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _csv(rows: int = 400) -> str:
    rng = random.Random(11)
    lines = ["x1,x2,color,label"]
    for _ in range(rows):
        x1, x2 = rng.uniform(-3, 3), rng.uniform(-3, 3)
        color = rng.choice(["red", "green", "blue"])
        label = "yes" if x1 + 0.5 * x2 + (1.0 if color == "red" else 0.0) > 0.3 else "no"
        lines.append(f"{x1:.4f},{x2:.4f},{color},{label}")
    return "\n".join(lines) + "\n"


def _ready(driver: WebDriver) -> None:
    """Waits for the page's script to finish loading its data; fails with what it showed if it failed."""
    state = _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    if state != "true":
        flash = driver.find_element(By.ID, "flash").text
        logs = [entry["message"] for entry in driver.get_log("browser")]
        raise AssertionError(f"{driver.current_url}: {flash} {logs}")


EMAIL, PASSWORD = "browser@example.com", "securepass123"


def test_sign_in_upload_train_and_watch_the_curve(
    stratus_server: ServeProcess, browser: WebDriver, tmp_path: Path
) -> None:
    base = stratus_server.base_url
    created = httpx.post(
        f"{base}/api/auth/register",
        json={"email": EMAIL, "password": PASSWORD, "name": "Browser"},
        timeout=30,
    )
    assert created.status_code == 201, created.text

    # A browser at the root is sent to the console, which asks it to sign in.
    browser.get(base + "/")
    _wait(browser, lambda d: "/console/signin" in d.current_url)
    _shot(browser, "signin")
    browser.find_element(By.CSS_SELECTOR, "#signin-form input[name=email]").send_keys(EMAIL)
    browser.find_element(By.CSS_SELECTOR, "#signin-form input[name=password]").send_keys(PASSWORD)
    browser.find_element(By.ID, "signin-submit").click()
    _wait(browser, lambda d: d.current_url.endswith("/console/jobs"))
    _ready(browser)

    # Upload a CSV with the progress bar; it appears in the list, ready.
    data = tmp_path / "customers.csv"
    data.write_text(_csv())
    browser.get(base + "/console/datasets")
    _ready(browser)
    browser.find_element(By.ID, "upload-file").send_keys(str(data))
    Select(browser.find_element(By.NAME, "dataset_type")).select_by_visible_text("classification")
    browser.find_element(By.ID, "upload-submit").click()
    _wait(browser, lambda d: "customers" in d.find_element(By.ID, "datasets-table").text)
    assert "ready" in browser.find_element(By.ID, "datasets-table").text
    assert browser.find_element(By.ID, "upload-progress").get_attribute("value") == "100"
    _shot(browser, "datasets")

    # The dataset's page: column profile (with its vega-embed chart) and a preview of the rows.
    browser.find_element(By.PARTIAL_LINK_TEXT, "customers").click()
    _ready(browser)
    profile = browser.find_element(By.ID, "profile-table").text
    assert "x1" in profile and "color" in profile
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#profile-chart svg"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#preview-table tbody tr")) == 50
    _shot(browser, "dataset")

    # Start training from the jobs page; its page draws the loss curve as the epochs arrive.
    browser.get(base + "/console/jobs")
    _ready(browser)
    epochs = browser.find_element(By.NAME, "epochs")
    epochs.clear()
    epochs.send_keys("25")
    browser.find_element(By.ID, "train-submit").click()
    _wait(browser, lambda d: "/console/jobs/" in d.current_url)
    chart = browser.find_element(By.ID, "job-chart")
    _wait(browser, lambda d: int(chart.get_attribute("data-points") or 0) >= 2, timeout=180)
    first = int(chart.get_attribute("data-points") or 0)
    assert "loss" in (chart.get_attribute("data-series") or "")
    assert browser.find_elements(By.CSS_SELECTOR, "#job-chart canvas")
    _shot(browser, "job-running")
    _wait(browser, lambda d: int(chart.get_attribute("data-points") or 0) > first, timeout=180)
    _wait(browser, lambda d: d.find_element(By.ID, "job-status").text == "completed", timeout=300)
    _wait(browser, lambda d: d.find_elements(By.ID, "job-model"))
    assert "status completed" in browser.find_element(By.ID, "job-events").text
    _shot(browser, "job-completed")

    browser.get(base + "/console/jobs")
    _ready(browser)
    _wait(browser, lambda d: "completed" in d.find_element(By.ID, "jobs-table").text)
    _shot(browser, "jobs")


def test_every_page_fits_a_phone(stratus_server: ServeProcess, phone: WebDriver) -> None:
    base = stratus_server.base_url
    token = httpx.post(
        f"{base}/api/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=30
    ).json()["access_token"]
    phone.get(base + "/console/signin")
    _shot(phone, "phone-signin")
    phone.execute_script("localStorage.setItem('stratus.token', arguments[0])", token)
    for page in ("jobs", "datasets", "models", "playground", "keys", "webhooks"):
        phone.get(f"{base}/console/{page}")
        _ready(phone)
        # Nothing wider than the screen but the tables, which scroll inside their own box.
        overflow = phone.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{page} is {overflow}px wider than the phone"
        _shot(phone, f"phone-{page}")

    phone.get(base + "/console/keys")
    _ready(phone)
    phone.find_element(By.CSS_SELECTOR, "#key-form input[name=name]").send_keys("phone")
    phone.find_element(By.CSS_SELECTOR, "#key-form button").click()
    _wait(phone, lambda d: "sk-" in d.find_element(By.ID, "key-created").text)
    assert "phone" in phone.find_element(By.ID, "keys-table").text

    phone.get(base + "/console/webhooks")
    _ready(phone)
    phone.find_element(By.CSS_SELECTOR, "#hook-form input[name=url]").send_keys("http://127.0.0.1:9/hook")
    phone.find_element(By.CSS_SELECTOR, "#hook-form button").click()
    _wait(phone, lambda d: "127.0.0.1:9/hook" in d.find_element(By.ID, "hooks-table").text)
    phone.find_element(By.XPATH, "//button[text()='Test']").click()
    _wait(
        phone,
        lambda d: (
            "webhook.test" in d.find_element(By.ID, "deliveries-table").text
            or "test" in d.find_element(By.ID, "deliveries-table").text
        ),
    )
    _shot(phone, "phone-webhooks-deliveries")


@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", ".swagger-ui .opblock"), ("/redoc", "[data-section-id], .api-content")],
)
def test_docs_render_with_no_outside_request(
    stratus_server: ServeProcess, browser: WebDriver, path: str, rendered: str
) -> None:
    base = stratus_server.base_url
    _requested_urls(browser)  # forget earlier pages' requests
    browser.get(base + path)
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, rendered)) > 5)
    assert "Stratus" in browser.find_element(By.TAG_NAME, "body").text
    _shot(browser, path.strip("/"))
    outside = [
        url for url in _requested_urls(browser) if not url.startswith((base, "data:", "blob:", "about:"))
    ]
    assert outside == []
