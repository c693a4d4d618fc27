"""End to end in a real browser: headless Chromium answers the study page through the DOM,
with a reload and a server restart midway, and `bench study results` counts every answer."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmark import study
from benchmark.cli import main
from tests import browser
from tests.test_study import _mlflow_run

pytestmark = pytest.mark.skipif(browser.missing() is not None,
                                reason=f'no headless Chromium: {browser.missing()}')
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _serve(uri: str, db: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    server = subprocess.Popen([sys.executable, '-m', 'benchmark.cli', 'study', '--tracking-uri', uri,
                               '--db', str(db), '--port', str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=2)
            return server
        except OSError:
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.3)
    server.kill()
    raise AssertionError('bench study did not answer within 120 s')


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def test_a_participant_answers_every_clip_in_chromium_across_a_reload_and_a_restart(tmp_path):
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    uri, _ = _mlflow_run(tmp_path, 'raw')
    _mlflow_run(tmp_path, 'depth')
    db, port = tmp_path / 'study.db', _free_port()
    server = _serve(uri, db, port)
    driver = browser.chromium()
    try:
        driver.get(f'http://127.0.0.1:{port}/')
        driver.find_element(By.ID, 'participant').send_keys('p01')
        driver.find_element(By.ID, 'start').click()
        labels = study.StudyStore(db)
        answered = []
        while not driver.find_elements(By.ID, 'done'):
            clip_id = driver.find_element(By.ID, 'clip_id').get_attribute('value')
            assert f'Clip {len(answered) + 1} of 4' in driver.find_element(By.ID, 'progress').text
            assert driver.execute_script(
                'const i = document.getElementById("clip"); return i.complete && i.naturalWidth') == 224
            if len(answered) == 1:  # a reload shows the same clip again: nothing was answered yet
                driver.refresh()
                assert driver.find_element(By.ID, 'clip_id').get_attribute('value') == clip_id
            if len(answered) == 2:  # the server stops and starts again; the answers stay
                _stop(server)
                server = _serve(uri, db, port)
                driver.refresh()
                assert driver.find_element(By.ID, 'clip_id').get_attribute('value') == clip_id
            action = labels.clip(clip_id).action
            driver.find_element(By.CSS_SELECTOR, f'input[name="answer"][value="{action}"]').click()
            driver.find_element(By.CSS_SELECTOR, 'input[name="rating"][value="5"]').click()
            # mark this document, submit, and wait for a whole document without the mark: the next
            # page. (Selenium's staleness_of asks Chromium about the old <html> element, which
            # Chromium can answer with an inspector error mid-navigation instead of "stale".)
            driver.execute_script('window.answeredHere = true')
            driver.find_element(By.ID, 'submit').click()
            WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
                lambda d: d.execute_script(
                    'return !window.answeredHere && document.readyState === "complete"'))
            answered.append(clip_id)
        assert 'All 4 clips are answered' in driver.page_source
        assert sorted(answered) == sorted(labels.clip_ids())  # each clip once, none twice
        shot = Path(os.environ.get('STUDY_SCREENSHOT', tmp_path / 'done.png'))
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
        _stop(server)
    assert main(['study', 'results', '--tracking-uri', uri, '--db', str(db)]) == 0
    rows, _ = study.results(study.StudyStore(db))
    assert [(r['method'], r['top1'], r['answers'], r['participants'], r['mean_rating'])
            for r in rows] == [('depth', 1.0, 2, 1, 5.0), ('raw', 1.0, 2, 1, 5.0)]
