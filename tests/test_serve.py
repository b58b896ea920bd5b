"""`mt serve` as a real process on 127.0.0.1, driven by clients this project did not write."""

import asyncio
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from mt.config import DecodeConfig
from mt.serve import BatchingQueue, Job, Limits, ModelThread
from mt.translate import Translation, Translator

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["a b c", "d e f g", "h i", "a a b b c c"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "serve", "--checkpoint", str(tiny_checkpoint), "--port", str(port),
         "--threads", "1", "--max-sentences", "1000", "--max-request-bytes", "200000", "--max-characters", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while True:
        try:
            requests.get(url + "health", timeout=1)
            break
        except requests.ConnectionError:
            assert process.poll() is None and time.time() < deadline, process.stdout.read().decode()
            time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(30)


@pytest.fixture(scope="module")
def expected(tiny_checkpoint):
    """What `mt translate` gives for SENTENCES (the checkpoint's own decoding settings)."""
    return [result.text for result in Translator.from_checkpoint(tiny_checkpoint, device="cpu", threads=1).translate(SENTENCES)]


def test_libretranslatepy_gets_the_translations_of_mt_translate(server, expected):
    from libretranslatepy import LibreTranslateAPI

    client = LibreTranslateAPI(server)
    assert [client.translate(text, "en", "de") for text in SENTENCES] == expected
    assert client.languages() == [{"code": "en", "name": "English", "targets": ["de"]}]


def test_deep_translators_libre_translator_gets_them_too(server, expected):
    from deep_translator import LibreTranslator

    client = LibreTranslator(source="en", target="de", custom_url=server, api_key="unused", use_free_api=False)
    assert [client.translate(text) for text in SENTENCES] == expected


def test_a_list_with_alternatives_and_mt_s_own_route_with_attention(server, expected):
    answer = requests.post(server + "translate", json={"q": SENTENCES, "source": "en", "target": "de",
                                                       "alternatives": 2}, timeout=30).json()
    assert answer["translatedText"] == expected and [len(a) for a in answer["alternatives"]] == [2] * len(SENTENCES)
    own = requests.post(server + "v1/translate", json={"q": ["a b c"], "attention": True, "n_best": 2, "beam_size": 3},
                        timeout=30).json()
    (entry,) = own["translations"]
    attention = entry["attention"]
    layers, heads = len(attention["weights"]), len(attention["weights"][0])
    assert (layers, heads) == (1, 4) and len(entry["n_best"]) == 2
    for weights, rows, columns in (("weights", "target_pieces", "source_pieces"), ("word_weights", "target_words", "source_words")):
        for head in attention[weights][0]:
            assert len(head) == len(attention[rows]) and all(
                len(row) == len(attention[columns]) and abs(sum(row) - 1) < 1e-2 for row in head)
    assert attention["source_words"] == ["a", "b", "c", "</s>"]
    links = [tuple(map(int, link.split("-"))) for link in attention["alignment"].split()]
    assert [target for _, target in links] == [t for t, word in enumerate(attention["target_words"]) if word != "</s>"]


def test_bad_requests_get_libretranslate_errors_and_the_server_keeps_serving(server):
    cases = [
        ({"json": {"q": "", "source": "en", "target": "de"}}, 400, "q is empty"),
        ({"json": {"source": "en", "target": "de"}}, 400, "missing q"),
        ({"json": {"q": ["a"] * 10_000, "source": "en", "target": "de"}}, 413, ""),
        ({"json": {"q": "a " * 500_000, "source": "en", "target": "de"}}, 413, ""),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"q": "a b", "source": "en", "target": "fr"}}, 404, "no model translates en->fr"),
        ({"json": {"q": "a b", "source": "en", "target": "de", "beam_size": "nan"}}, 400, ""),
        ({"json": {"q": [1, 2], "source": "en", "target": "de"}}, 400, "list of strings"),
    ]
    for request, status, message in cases:
        response = requests.post(server + "translate" if "beam_size" not in str(request) else server + "v1/translate",
                                 timeout=30, **request)
        assert response.status_code == status and message in response.json()["error"], (request, response.text[:200])
    with socket.create_connection(("127.0.0.1", int(server.rsplit(":", 1)[1].strip("/")))) as client:
        client.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 1000\r\n\r\n{\"q\": \"a b")  # and hang up half-way
    assert requests.get(server + "health", timeout=10).json()["status"] == "ok"
    assert requests.post(server + "translate", json={"q": "a b", "source": "en", "target": "de"}, timeout=30).ok


def test_concurrent_requests_are_batched_and_answered_alike(server, expected):
    before = requests.get(server + "health", timeout=10).json()

    def ask(text):
        return requests.post(server + "translate", json={"q": text, "source": "en", "target": "de"}, timeout=60).json()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, SENTENCES * 16))
    assert [a["translatedText"] for a in answers] == expected * 16
    after = requests.get(server + "health", timeout=10).json()
    requests_made = after["requests_translated"] - before["requests_translated"]
    assert requests_made == 64 and after["batches"] - before["batches"] < requests_made


def test_the_page_and_its_assets_are_served_without_any_cdn(server):
    page = urllib.request.urlopen(server, timeout=10).read().decode()
    assert "/static/app.js" in page and "http" not in page.replace("http-equiv", "")
    for asset in ("static/app.js", "static/style.css", "font/NotoSansSC-Regular.otf"):
        assert urllib.request.urlopen(server + asset, timeout=10).status == 200


def test_attention_html_is_one_self_contained_page_with_text_as_data(tiny_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from cli import app
    page = tmp_path / "attention.html"
    result = CliRunner().invoke(app, ["translate", "a b </script><b>x", "--checkpoint", str(tiny_checkpoint),
                                      "--attention-html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "/static/" not in html and "window.MT_DATA" in html and "</script><b>" not in html
    data = json.loads(html.split("window.MT_DATA = ", 1)[1].split(";</script>", 1)[0].replace("<\\/", "</"))
    assert data["items"][0]["source"] == "a b </script><b>x" and data["items"][0]["translation"]["attention"]


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")
def test_the_page_translates_as_you_type_and_hover_highlights_the_source_word(server, monkeypatch):
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(server)
        driver.find_element(By.ID, "source").send_keys("a b c")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.ID, "translation").text and d.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr"))
        own = requests.post(server + "v1/translate", json={"q": "a b c", "attention": True, "n_best": 3}, timeout=30).json()
        entry = own["translations"][0]
        assert driver.find_element(By.ID, "translation").text == entry["text"]
        weights = entry["attention"]["word_weights"][-1]  # words, the last layer, heads averaged, as the page starts
        first_row = [sum(head[0][s] for head in weights) / len(weights) for s in range(len(weights[0][0]))]
        strongest = entry["attention"]["source_words"][first_row.index(max(first_row))]
        ActionChains(driver).move_to_element(driver.find_element(By.CSS_SELECTOR, "#heatmap tbody tr th")).perform()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#heatmap thead th.strongest"))
        assert driver.find_element(By.CSS_SELECTOR, "#heatmap thead th.strongest").text == strongest
    finally:
        driver.quit()


class SlowTranslator:
    """Stands in for a Translator in the queue: takes ``seconds`` per call, records each call's
    batch size and thread."""

    def __init__(self, seconds: float):
        self.seconds, self.batches, self.threads = seconds, [], set()

    def translate(self, sentences, decode, return_attention=False):
        self.batches.append(len(sentences))
        self.threads.add(threading.get_ident())
        time.sleep(self.seconds)
        return [Translation(sentence, sentence.upper(), 0.0) for sentence in sentences]


def run_clients(limits: Limits, translator: SlowTranslator, clients: int, rounds: int, think: float,
                model_thread: ModelThread | None = None) -> list[float]:
    """``clients`` closed-loop clients, each sending ``rounds`` requests and pausing ``think`` x its
    number seconds between them (answers come back staggered, as from HTTP); their latencies."""
    model_thread = model_thread or ModelThread()

    async def main():
        queue = BatchingQueue(limits, model_thread)
        await queue.start()
        latencies = []

        async def client(number):
            for _ in range(rounds):
                began = time.monotonic()
                assert await queue.submit(Job(translator, [f"s{number}"], DecodeConfig(), False)) == [Translation(f"s{number}", f"S{number}", 0.0)]
                latencies.append(time.monotonic() - began)
                await asyncio.sleep(think * number)

        await asyncio.gather(*(client(number) for number in range(clients)))
        await queue.stop()
        return latencies

    return asyncio.run(main())


def test_a_steady_load_is_batched_whole_not_in_alternating_halves():
    # 8 clients whose answers come back 0-14 ms apart: a fixed 5 ms window after the first would
    # split them, and then they alternate in two half batches for good
    translator = SlowTranslator(0.05)
    run_clients(Limits(batch_wait=0.2), translator, clients=8, rounds=6, think=0.002)
    assert translator.batches[2:] == [8] * (len(translator.batches) - 2), translator.batches


def test_a_lone_client_does_not_wait_for_the_batch_window():
    translator = SlowTranslator(0.01)
    latencies = run_clients(Limits(batch_wait=0.5), translator, clients=1, rounds=3, think=0.0)
    assert max(latencies) < 0.25 and translator.batches == [1, 1, 1]


def test_the_model_is_loaded_and_run_on_one_thread():
    model_thread = ModelThread()
    translator = model_thread.call(SlowTranslator, 0.0)
    loaded_on = model_thread.call(threading.get_ident)
    run_clients(Limits(), translator, clients=4, rounds=2, think=0.0, model_thread=model_thread)
    assert translator.threads == {loaded_on} and loaded_on != threading.get_ident()
