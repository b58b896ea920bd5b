"""A screenshot of the `mt serve` page translating a sentence, with its heatmap, hovered on one
target word. Headless Debian Chromium through Selenium (apt-get install chromium chromium-driver;
Selenium Manager is kept offline). Starts its own server on a free port of 127.0.0.1.

    python scripts/page_screenshot.py "I love machine learning" -o docs/serve-page.png [--checkpoint DIR] [--hover 2]
        [--glossary "machine learning = 机器学习"]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sentence")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--hover", type=int, default=1, help="target word (row, 0-based) to hover")
    parser.add_argument("--glossary", default="", help='terms typed into the page\'s glossary box, e.g. "machine learning = 机器学习"')
    args = parser.parse_args()
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    checkpoint = ["--checkpoint", args.checkpoint] if args.checkpoint else []
    server = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "--port", str(port), *checkpoint])
    url = f"http://127.0.0.1:{port}/"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,720"):
        options.add_argument(argument)
    driver = None
    try:
        while True:
            try:
                requests.get(url + "health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.get(url)
        driver.find_element(By.ID, "source").send_keys(args.sentence)
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr"))
        if args.glossary:
            driver.find_element(By.CSS_SELECTOR, "#glossary-box summary").click()
            driver.find_element(By.ID, "glossary").send_keys(args.glossary)
            WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "terms").text)
            print(f"glossary: {driver.find_element(By.ID, 'terms').text}")
        rows = driver.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr th")
        ActionChains(driver).move_to_element(rows[min(args.hover, len(rows) - 1)]).perform()
        time.sleep(0.5)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.output))
        print(f"{args.output}: {driver.find_element(By.ID, 'translation').text}")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
