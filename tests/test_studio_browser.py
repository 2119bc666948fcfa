"""The studio in a real browser: headless Chromium (Debian ``chromium`` + ``chromium-driver``) driven by
Selenium against ``python -m musicrnn.studio`` on a free local port, with the pretrained model.

Skips (with the reason) only where Gradio, Selenium or the browser is not installed. The upload and
generate test saves the README's screenshot to docs/studio.png.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import musicrnn
from musicrnn.data.cache import SAMPLE_ROOT

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "studio.png"
BUNDLED = SAMPLE_ROOT / "2006" / "MIDI-Unprocessed_01_R1_2006_01-09_ORIG_MID--AUDIO_01_R1_2006_04_Track04_wav.midi"
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")
MISSING = [name for name, ok in (("gradio", importlib.util.find_spec("gradio")),
                                 ("selenium", importlib.util.find_spec("selenium")),
                                 ("chromium (apt-get install chromium)", BROWSER),
                                 ("chromedriver (apt-get install chromium-driver)", DRIVER)) if not ok]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(MISSING), reason=f"no browser test without {', '.join(MISSING)}")]
WAIT_S = 300  # a busy 2-core machine: server start-up, generation, FluidSynth (all ~15x slower under load)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m musicrnn.studio`` on a free port; its URL. Stopped (its own pid) after the module."""
    folder = tmp_path_factory.mktemp("studio-server")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(folder / "gradio")}
    log = open(folder / "server.log", "w")  # noqa: SIM115 - open for the server's whole life
    proc = subprocess.Popen([sys.executable, "-m", "musicrnn.studio", "--port", str(port)], cwd=folder, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + WAIT_S
    while True:
        with contextlib.suppress(OSError):
            if urllib.request.urlopen(url, timeout=5).status == 200:
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the studio did not start: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(1)
    yield url
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,2300", "--mute-audio"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture
def page(server):
    driver = _browser()
    driver.get(server)
    _wait_text(driver, "prime-message", "Prime: the end of")  # the page loaded, the default piece is primed
    yield driver
    driver.quit()


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(condition, f"waited {WAIT_S} s for {what}")


def _text(driver, elem_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, elem_id).text


def _wait_text(driver, elem_id: str, expected: str) -> str:
    _wait(driver, lambda d: expected in _text(d, elem_id), f"{expected!r} in #{elem_id}")
    return _text(driver, elem_id)


def _set(driver, css: str, value) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, css)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def _upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "#prime-upload input[type=file]").send_keys(str(path))


def _click(driver, elem_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, elem_id).click()


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def test_upload_a_prime_generate_hear_and_download(page, tmp_path):
    from selenium.webdriver.common.by import By

    upload = tmp_path / "schubert-fantasy.mid"
    shutil.copy(BUNDLED, upload)
    _upload(page, upload)
    assert "128 notes" in _wait_text(page, "prime-message", "Prime: the end of schubert-fantasy.mid")
    _wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#prime-roll img"), "the prime's piano roll")
    _set(page, "#num-notes input[type=number]", 32)
    _set(page, "#seed textarea", 7)
    _click(page, "generate")
    status = _wait_text(page, "status", "Done: 32 notes generated after 128 prime notes")
    assert "seed 7" in status

    files = {a.get_attribute("download"): a.get_attribute("href")
             for a in page.find_elements(By.CSS_SELECTOR, "#result-files a[download]")}
    for name, notes in (("musicrnn-7-continuation.mid", 32), ("musicrnn-7.mid", 128 + 32)):
        (tmp_path / name).write_bytes(_fetch(files[name]))
        assert len(musicrnn.read_midi(tmp_path / name)) == notes
    if shutil.which("fluidsynth") is None:
        assert "No audio: FluidSynth is not installed" in status
    else:
        audio = page.find_element(By.CSS_SELECTOR, "#result-audio audio")
        src = audio.get_attribute("src")
        assert src.endswith("musicrnn-7.wav") and _fetch(src)[:4] == b"RIFF"
        _wait(page, lambda d: d.execute_script("return arguments[0].readyState", audio) >= 1, "the audio to load")
        assert page.execute_script("return arguments[0].duration", audio) > 1  # the browser decoded it
    table = _text(page, "structure")
    assert "notes per second" in table and "pianist (10–90 %)" in table
    page.execute_script("window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.save_screenshot(str(SCREENSHOT))

    _set(page, "#continue-notes input[type=number]", 8)
    _click(page, "continue")
    _wait_text(page, "status", "Done: 40 notes generated after 128 prime notes")


@pytest.mark.parametrize(("name", "content", "message"), [
    ("notes.txt.mid", b"these are not notes", "Error: notes.txt.mid is not a MIDI file this can read"),
    ("empty.mid", b"", "Error: empty.mid is empty"),
])
def test_a_bad_upload_shows_a_message_and_the_page_keeps_working(page, tmp_path, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    _upload(page, bad)
    _wait_text(page, "prime-message", message)
    good = tmp_path / "good.mid"
    shutil.copy(BUNDLED, good)
    _upload(page, good)  # the server is still there, and the page still reads primes
    _wait_text(page, "prime-message", "Prime: the end of good.mid")


def test_two_generations_at_once_both_finish(server):
    from selenium.webdriver.common.by import By

    drivers = [_browser(), _browser()]
    try:
        for d in drivers:
            d.get(server)
            _wait_text(d, "prime-message", "Prime: the end of")
            d.find_element(By.CSS_SELECTOR, "#prime-source input[value^='None']").click()
            _wait_text(d, "prime-message", "window of the bundled sample")
        long, short = drivers
        _set(long, "#num-notes input[type=number]", 600)
        _set(short, "#num-notes input[type=number]", 200)
        for d in drivers:
            _click(d, "generate")
        # the long one shows its progress ("… / 600 notes") while it works
        shown = _wait(long, lambda d: _progress_or_done(d, "/ 600 notes", "Done: 600 notes"), "progress")
        assert shown == "progress"
        _wait_text(short, "status", "Done: 200 notes generated")
        _wait_text(long, "status", "Done: 600 notes generated")
    finally:
        for d in drivers:
            d.quit()


def _progress_or_done(driver, progress: str, done: str) -> str | None:
    text = driver.execute_script("return document.body.innerText")
    return "progress" if progress in text else "done" if done in text else None
