"""Headless Chromium for the study page's browser tests, driven by selenium through Debian's
chromium-driver (no download: the driver's path is given, so Selenium Manager stays idle)."""
from __future__ import annotations

import shutil

DRIVER_PATHS = ('/usr/bin/chromedriver', '/usr/lib/chromium/chromedriver')
INSTALL_HINT = 'apt-get install chromium chromium-driver (.ci/run does) and pip install selenium'


def missing() -> str | None:
    """Why no headless Chromium can be driven here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f'selenium is not installed: {INSTALL_HINT}'
    if not (shutil.which('chromium') or shutil.which('chromium-browser')):
        return f'no chromium binary: {INSTALL_HINT}'
    if not _driver_path():
        return f'no chromedriver: {INSTALL_HINT}'
    return None


def _driver_path() -> str | None:
    return shutil.which('chromedriver') or next(
        (p for p in DRIVER_PATHS if shutil.os.path.exists(p)), None)


def chromium(width: int = 900, height: int = 900):
    """A headless Chromium WebDriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                f'--window-size={width},{height}'):
        options.add_argument(arg)
    options.binary_location = shutil.which('chromium') or shutil.which('chromium-browser')
    return webdriver.Chrome(service=Service(_driver_path()), options=options)
