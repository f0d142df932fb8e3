"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium (docs/observability.md).

Chromium and chromedriver come from Debian (hack/test-packages.txt), never from
Selenium's own downloads (which cannot work here). What a person would check, while
the operator rolls a model back: the fleet row turns Critical, the rollback appears on
the model's stage timeline without a reload, the threshold line sits at the policy's
value, and the model card shows UTF-8 intact. With MODELREG_UPDATE_SCREENSHOTS=1 the
screenshots it takes replace those of docs/images/ (shown in the README).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dashboard_kit import dashboard
from tests.integration.kit import Cluster, OperatorProcess, snapshot_body

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "docs" / "images"
DESCRIPTION = "Détecteur de fraude — 检测欺诈交易 🚀"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1360,1000", "--disable-dev-shm-usage",
)  # fmt: skip
NO_WAIT = {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False}


@pytest.fixture()
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the `test` extras)")
    for path in (CHROMIUM, DRIVER):
        if not os.path.exists(path):
            pytest.fail(f"{path} is missing: hack/test-packages.txt lists chromium and chromium-driver", pytrace=False)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try to download a browser
    profile = tempfile.mkdtemp(prefix="modelreg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def until(driver: Any, script: str, timeout: float = 90.0, what: str = "") -> Any:
    """Run ``script`` (a JS expression) in the page until it is truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = driver.execute_script(f"return ({script});")
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what or script}: last={last!r}")


def test_fleet_and_model_pages_follow_a_rollback(
    operator: OperatorProcess, k: Cluster, kube: Any, namespace: str, browser: Any, tmp_path: Path
) -> None:
    # The README's screenshots: refreshed with MODELREG_UPDATE_SCREENSHOTS=1, else taken into tmp_path.
    images = IMAGES if os.environ.get("MODELREG_UPDATE_SCREENSHOTS") == "1" else tmp_path
    policy = {"mode": "Automatic", "consecutiveBreaches": 2, "criteria": {"errorRate": {"max": 0.05}}}
    for name, version in (("fraud-detector-3-0-2", "3.0.2"), ("fraud-detector-3-1-0", "3.1.0")):
        k.model(name, model_name="fraud-detector", version=version, promotionPolicy=NO_WAIT,
                rollbackPolicy=policy, description=DESCRIPTION)  # fmt: skip
        k.wait_stage(name, "Production", timeout=90)
    k.model("churn-1-4-0", model_name="churn", version="1.4.0", promotionPolicy=NO_WAIT,
            description="Customer churn — 客户流失")  # fmt: skip
    k.wait_stage("churn-1-4-0", "Production", timeout=90)
    for i, error in enumerate((0.011, 0.018, 0.024, 0.031)):
        k.create(snapshot_body(f"fraud-detector-3-1-0-ok-{i}", "fraud-detector-3-1-0",
                               metrics={"errorRate": error, "oodRate": 0.05 + i / 100}))  # fmt: skip
        k.wait_verdict(f"fraud-detector-3-1-0-ok-{i}")
    k.create(snapshot_body("churn-1-4-0-ok", "churn-1-4-0", metrics={"errorRate": 0.02, "oodRate": 0.04}))
    k.wait_verdict("churn-1-4-0-ok")

    with dashboard(Path(kube.kubeconfig), "-n", namespace) as url:
        browser.get(url)  # the printed address: the token becomes a cookie, then it is dropped from the URL
        assert "token=" not in browser.current_url
        row = "document.querySelector('#fleet tr[data-model=\"fraud-detector\"]')"
        until(browser, f"{row} && {row}.getAttribute('data-health') === 'Healthy'", what="fraud-detector Healthy")
        until(browser, "document.getElementById('live').textContent === 'live'", what="the live connection")

        # Sortable and filterable, in the page.
        models = "Array.from(document.querySelectorAll('#fleet tbody tr')).map(r => r.dataset.model)"
        header = "document.querySelectorAll('#fleet th')[1]"
        browser.execute_script(f"{header}.click(); {header}.click();")  # Model, descending
        assert browser.execute_script(f"return {models};") == ["fraud-detector", "churn"]
        # Typed in one script: a live update may replace the input between two WebDriver calls.
        type_filter = (
            "var f = document.getElementById('filter'); f.focus(); f.value = arguments[0];"
            " f.setSelectionRange(f.value.length, f.value.length);"
            " f.dispatchEvent(new Event('input', {bubbles: true}));"
        )
        browser.execute_script(type_filter, "churn")
        visible = "Array.from(document.querySelectorAll('#fleet tbody tr')).filter(r => r.style.display !== 'none')"
        assert browser.execute_script(f"return {visible}.map(r => r.dataset.model);") == ["churn"]
        browser.execute_script(type_filter, "fraud")  # still being typed in when the next update lands

        # A first breach (the rollback needs two in a row): Critical, shown without a reload.
        browser.execute_script("window.__kept = 'no reload';")
        k.create(snapshot_body("fraud-detector-3-1-0-bad-1", "fraud-detector-3-1-0",
                               metrics={"errorRate": 0.083, "oodRate": 0.09}))  # fmt: skip
        until(browser, f"{row}.getAttribute('data-health') === 'Critical'", what="the fleet row Critical")
        assert browser.execute_script("return window.__kept;") == "no reload"
        # The update kept the filter, its focus and its caret for the person typing.
        focus = "var f = document.activeElement; return [f.id, f.value, f.selectionStart];"
        assert browser.execute_script(focus) == ["filter", "fraud", 5]
        assert browser.execute_script(f"return {visible}.map(r => r.dataset.model);") == ["fraud-detector"]
        browser.execute_script(type_filter, "")
        cells = browser.execute_script(f"return Array.from({row}.cells).map(c => c.textContent.trim());")
        assert cells[1:4] == ["fraud-detector", "3.1.0", "Critical"] and cells[5] == "0.083", cells
        images.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(images / "dashboard-fleet.png"))

        # The model page, while the operator rolls 3.1.0 back.
        browser.find_element("link text", "fraud-detector").click()
        until(browser, "document.querySelector('svg.chart[data-metric=\"errorRate\"]')", what="the errorRate chart")
        browser.execute_script("window.__kept = 'no reload';")
        k.create(snapshot_body("fraud-detector-3-1-0-bad-2", "fraud-detector-3-1-0",
                               metrics={"errorRate": 0.091, "oodRate": 0.1}))  # fmt: skip
        until(
            browser,
            'document.querySelector(\'ol.timeline[data-version="3.1.0"] li[data-reason="RolledBack"]\')'
            ' && document.querySelector(\'ol.timeline[data-version="3.0.2"] li[data-reason="Restored"]\')',
            what="the rollback on the timeline",
        )
        assert browser.execute_script("return window.__kept;") == "no reload"

        # Both breaching snapshots marked (the operator writes snapshot verdicts after the versions).
        until(
            browser,
            "document.querySelectorAll('svg.chart[data-metric=\"errorRate\"] circle.breach').length === 2",
            what="both breaches marked",
        )
        # The threshold line sits at the policy's value on the chart's own scale.
        line = browser.execute_script(
            "const s = document.querySelector('svg.chart[data-metric=\"errorRate\"]');"
            "const l = s.querySelector('line.threshold');"
            "return {value: +l.dataset.value, bound: l.dataset.bound, y: l.y1.baseVal.value,"
            " y0: +s.dataset.y0, y1: +s.dataset.y1, top: +s.dataset.top, bottom: +s.dataset.bottom,"
            " breaches: s.querySelectorAll('circle.breach').length,"
            " warn: +s.querySelector('line.warn').dataset.value};"
        )
        assert line["value"] == 0.05 and line["bound"] == "max"
        shown = line["y1"] - (line["y"] - line["top"]) / (line["bottom"] - line["top"]) * (line["y1"] - line["y0"])
        assert abs(shown - 0.05) < 1e-3, line
        assert abs(line["warn"] - 0.04) < 1e-9  # warnRatio 0.8 (the operator default)
        assert line["breaches"] == 2, line
        assert "snapshots retained" in browser.find_element("css selector", "p.retention").text

        # The card, rendered by the operator, with UTF-8 intact (CJK and emoji included).
        card = until(browser, "document.getElementById('model-card') && "
                              "document.getElementById('model-card').innerText", what="the model card")  # fmt: skip
        assert DESCRIPTION in card
        assert DESCRIPTION in browser.find_element("css selector", "p.description").text
        incidents = browser.execute_script("return document.querySelectorAll('tr[data-incident]').length;")
        assert incidents >= 1
        browser.set_window_size(1360, 2200)
        time.sleep(0.5)
        assert browser.save_screenshot(str(images / "dashboard-model.png"))
