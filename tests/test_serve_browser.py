"""The page of fastleaf serve in a real headless chromium (Debian's chromium + chromium-driver,
driven over WebDriver): pick a photo, read the rendered top-5, keep a screenshot.

    apt-get install -y chromium chromium-driver && pip install selenium
    pytest -m browser tests/test_serve_browser.py
    FASTLEAF_SCREENSHOT=docs/serve-screenshot.png pytest -m browser ...   # keep the picture
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fastleaf.data.table import load_table
from fastleaf.export.exporter import export_run
from fastleaf.export.model_info import ExportSettings

from conftest import SHARED_DATA
from test_export import write_run
from test_serve import Server, request

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1000,760"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tiny_data, tmp_path_factory):
    # real leaf photos and species names when the shared data is here
    data = SHARED_DATA if (SHARED_DATA / "train.csv").is_file() else tiny_data
    folder = tmp_path_factory.mktemp("page")
    run = write_run(folder / "run", data, "cnn")
    export_run(run, folder / "cnn.onnx", ExportSettings(check=0))
    server = Server(folder / "cnn.onnx")
    yield server, load_table(data).val.paths[0]
    server.stop()


def test_a_picked_photo_shows_its_top5(browser, page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, photo = page
    browser.get(server.url + "/")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "model").text)
    assert "cnn" in browser.find_element(By.ID, "model").text
    browser.find_element(By.ID, "file").send_keys(str(photo))
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done")
    rows = browser.find_elements(By.CSS_SELECTOR, "#top tbody tr")
    shown = [(r.find_element(By.CSS_SELECTOR, ".species").text,
              float(r.find_element(By.CSS_SELECTOR, ".probability").text)) for r in rows]
    expected = request(server.url + "/predict", photo.read_bytes())[1]["top"]
    assert [s for s, _ in shown] == [t["species"] for t in expected] and len(shown) == 5
    assert [p for _, p in shown] == [round(t["probability"], 4) for t in expected]
    assert browser.find_element(By.ID, "error").text == ""
    shot = Path(os.environ.get("FASTLEAF_SCREENSHOT") or tmp_path / "serve.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_a_bad_file_shows_the_servers_reason(browser, page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, _ = page
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo at all")
    browser.get(server.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(notes))
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "error")
    assert "not a readable image" in browser.find_element(By.ID, "error").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#top tbody tr")
