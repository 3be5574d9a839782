"""End to end in a real headless Chromium (Debian chromium + chromium-driver, driven by Selenium).

A simulated observer runs the 12-trial session (2 training + 10 test) through the page: clicks on
the two scales, a reload, a double click, a server killed with SIGKILL while an answer is being
sent and restarted, a window too small for native resolution, the grey screen before each trial.
Then every answer must be in SQLite exactly as the page showed it, and a screenshot must hold both
images pixel for pixel.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import sqlite3
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openjai.subjective import session as sess
from openjai.subjective.analysis import analyze

from .subjective_helpers import CROP, Server

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is not installed: run make setup")
if CHROMIUM is None or DRIVER is None:
    pytest.skip("no Chromium: Debian chromium and chromium-driver are not installed (make setup installs them as "
                "root; or apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: where to copy the screenshot for docs/subjective (unset in normal runs)
SHOTS = os.environ.get("OPENJAI_SUBJECTIVE_SHOTS")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--force-device-scale-factor=1", "--window-size=1000,800",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    # the driver path is given, so Selenium Manager never tries to download one
    d = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _until(d, timeout: float) -> WebDriverWait:
    return WebDriverWait(d, timeout, poll_frequency=0.05)


def _state(d) -> str:
    return d.execute_script("return document.body.dataset.state")


def _wait_trial(d, previous: str | None, timeout: float = 60) -> str:
    """Wait for a trial other than ``previous`` to be on screen; returns its id."""
    def ready(d):
        if _state(d) != "trial":
            return False
        tid = d.find_element(By.ID, "trial").get_attribute("data-trial-id")
        return tid if tid != previous else False
    return _until(d, timeout).until(ready)


_RECORD = ("window.__states = []; new MutationObserver(() => window.__states.push([document.body.dataset.state, "
           "performance.now()])).observe(document.body, {attributes: true, attributeFilter: ['data-state']});")


def _grey_before_trial(d) -> float:
    """Seconds the mid-grey screen was shown before the trial now on screen (states since the last call)."""
    states = d.execute_script("const s = window.__states; window.__states = []; return s;")
    names = [n for n, _ in states]
    assert names[-1] == "trial" and "grey" in names, names
    start = max(t for n, t in states if n == "grey")
    return (states[-1][1] - start) / 1000


def _rate(d, side: str, value: float) -> float:
    """Click the scale of ``side`` where ``value`` lies; returns the value the page took."""
    el = d.find_element(By.ID, "scale" + side)
    h = el.size["height"]
    ActionChains(d).move_to_element_with_offset(el, 0, round((0.5 - value / 100) * h)).click().perform()
    return float(el.get_attribute("data-value"))


def _answered(db: Path) -> dict[str, tuple[float, float]]:
    with sqlite3.connect(db) as con:
        return {t: (a, b) for t, a, b in con.execute("SELECT trial_id, score_a, score_b FROM scores")}


def _fetch_png(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=10) as r:
        return np.asarray(Image.open(io.BytesIO(r.read())).convert("RGB"))


def _check_native_screenshot(d, server: Server, tid: str, out: Path) -> None:
    """Both images are drawn at their pixel size, pixel for pixel, in a real screenshot."""
    info = d.execute_script(
        "return {dpr: window.devicePixelRatio, imgs: ['imgA', 'imgB'].map(id => { const e = document.getElementById(id);"
        " const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height, e.naturalWidth, e.naturalHeight]; })}")
    assert info["dpr"] == 1
    png = d.get_screenshot_as_png()
    out.write_bytes(png)
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    for (x, y, w, h, nw, nh), side in zip(info["imgs"], "AB"):
        assert (w, h) == (nw, nh) == CROP  # CSS size = natural size = the crop's pixel size
        assert float(x).is_integer() and float(y).is_integer()
        x, y = int(x), int(y)
        want = _fetch_png(f"{server.url}/api/trials/{tid}/{side}")
        got = shot[y:y + h, x:x + w]
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 2  # unscaled: any resampling would smear edges


def test_observer_session_in_chromium(driver, session_dir, serve_session, tmp_path):
    t0 = time.perf_counter()
    d = driver
    s = sess.load(session_dir)
    db = session_dir / sess.RESULTS_DB
    server = serve_session()
    d.get(f"{server.url}/")
    _until(d, 30).until(lambda d: _state(d) == "start")
    d.execute_script(_RECORD)
    d.find_element(By.ID, "observer").send_keys("alice")
    d.find_element(By.ID, "go").click()

    rng = random.Random(0)
    shown: dict[str, tuple[float, float]] = {}
    n_trials = len(s.training) + len(s.conditions)
    tid = None
    for k in range(n_trials):
        tid = _wait_trial(d, tid)
        assert _grey_before_trial(d) >= s.grey_seconds - 0.02  # mid-grey adaptation before every trial
        status = d.find_element(By.ID, "status").text
        assert status.startswith("Training" if k < len(s.training) else "Trial")
        assert d.find_element(By.ID, "submit").get_attribute("disabled")  # nothing sent before both scales are set
        if k == 3:  # a reload resumes the same, unanswered trial
            d.refresh()
            assert _wait_trial(d, None) == tid
            d.execute_script(_RECORD)
        if k == 4:  # the window too small for native size is said on the page; images stay unscaled
            d.set_window_size(300, 400)
            _until(d, 10).until(lambda d: d.find_element(By.ID, "toosmall").is_displayed())
            assert d.execute_script("return document.getElementById('imgA').getBoundingClientRect().width") == CROP[0]
            d.set_window_size(1000, 800)
            _until(d, 10).until(lambda d: not d.find_element(By.ID, "toosmall").is_displayed())
        want_a, want_b = rng.uniform(5, 95), rng.uniform(5, 95)
        a, b = _rate(d, "A", want_a), _rate(d, "B", want_b)
        assert abs(a - want_a) < 1.5 and abs(b - want_b) < 1.5  # the mark lands where the observer clicked
        if k == 5:
            _check_native_screenshot(d, server, tid, tmp_path / "dscqs.png")
            if SHOTS:
                shutil.copy(tmp_path / "dscqs.png", Path(SHOTS) / "dscqs_trial.png")
        shown[tid] = (a, b)
        before = len(_answered(db))
        if k == 6:  # killed server while the answer is sent: the page retries until it is back
            server.kill()
            d.find_element(By.ID, "submit").click()
            _until(d, 20).until(lambda d: "retrying" in d.find_element(By.ID, "msg").text)
            server.start()
        elif k == 7:
            ActionChains(d).double_click(d.find_element(By.ID, "submit")).perform()
        else:
            d.find_element(By.ID, "submit").click()
        _until(d, 60).until(lambda d: len(_answered(db)) == before + 1)
    assert d.execute_script("return getComputedStyle(document.getElementById('grey')).backgroundColor") \
        == "rgb(128, 128, 128)"
    _until(d, 30).until(lambda d: _state(d) == "done")
    d.find_element(By.ID, "another").click()  # the next observer on this browser starts afresh
    assert _state(d) == "start" and d.execute_script("return localStorage.getItem('openjai-observer')") is None
    assert _answered(db) == shown  # every answer, once, as the page showed it
    elapsed = time.perf_counter() - t0
    # the 10 test trials of this observer give a DMOS per condition
    res = analyze(session_dir, tmp_path / "analysis")
    assert set(res.conditions) == {c.id for c in s.conditions}
    assert all(v.n == 1 for v in res.conditions.values())
    print(f"\nbrowser session: {n_trials} trials in {elapsed:.1f} s\n" + res.markdown.split("\nPer condition")[0])


def test_viewer_in_chromium(driver, tmp_path, sample_rgb):
    import openjai

    crop = np.ascontiguousarray(sample_rgb[:120, :200])
    Image.fromarray(crop).save(tmp_path / "photo.png")
    data = openjai.encode(crop, bpp=0.5)
    (tmp_path / "photo.jai").write_bytes(data)
    server = Server(["view", str(tmp_path / "photo.jai"), "--originals", str(tmp_path)], tmp_path / "view.log")
    try:
        server.start("/api/view")
        driver.get(f"{server.url}/view")
        _until(driver, 60).until(lambda d: _state(d) == "ready")
        facts = {e.get_attribute("data-key"): e.text for e in driver.find_elements(By.CSS_SELECTOR, "#facts td[data-key]")}
        info = openjai.read_info(data)
        assert facts["bpp"] == f"{info.bpp:.4f}" and facts["model"] == info.model_id
        assert float(facts["psnr_y"]) > 25
        slider = driver.find_element(By.ID, "slider")
        driver.execute_script("arguments[0].value = 20; arguments[0].dispatchEvent(new Event('input'))", slider)
        assert driver.find_element(By.ID, "compare").get_attribute("data-divider") == "20"
        assert "inset(0px 0px 0px 20%)" in driver.find_element(By.ID, "top").value_of_css_property("clip-path")
        _until(driver, 30).until(lambda d: d.execute_script(
            "return ['top', 'bottom'].every(id => document.getElementById(id).complete && "
            "document.getElementById(id).naturalWidth > 0)"))
        sizes = driver.execute_script("return ['top', 'bottom'].map(id => { const r = document.getElementById(id)"
                                      ".getBoundingClientRect(); return [r.width, r.height]; })")
        assert sizes == [[200, 120], [200, 120]]
        if SHOTS:
            driver.save_screenshot(str(Path(SHOTS) / "viewer.png"))
    finally:
        server.kill()
