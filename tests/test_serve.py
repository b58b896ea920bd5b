"""`mt serve` as a real process on 127.0.0.1, driven by clients this project did not write."""

import asyncio
import concurrent.futures
import html
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
KEY = "s3cret key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def running_server(checkpoint, *options):
    """``mt serve`` of ``checkpoint`` on a free port, started and waited for; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "serve", "--checkpoint", str(checkpoint), "--port", str(port),
         "--threads", "1", *options],
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
def server(tiny_checkpoint):
    yield from running_server(tiny_checkpoint, "--max-sentences", "1000", "--max-request-bytes", "200000",
                              "--max-characters", "100000", "--read-timeout", "2")


@pytest.fixture(scope="module")
def keyed_server(tiny_checkpoint):
    yield from running_server(tiny_checkpoint, "--api-key", KEY)


@pytest.fixture(scope="module")
def expected(tiny_checkpoint):
    """What `mt translate` gives for SENTENCES (the checkpoint's own decoding settings)."""
    return [result.text for result in Translator.from_checkpoint(tiny_checkpoint, device="cpu").translate(SENTENCES)]


@pytest.mark.slow
def test_libretranslatepy_gets_the_translations_of_mt_translate(server, expected):
    from libretranslatepy import LibreTranslateAPI

    client = LibreTranslateAPI(server)
    assert [client.translate(text, "en", "de") for text in SENTENCES] == expected
    assert client.languages() == [{"code": "en", "name": "English", "targets": ["de"]}]


@pytest.mark.slow
def test_deep_translators_libre_translator_gets_them_too(server, expected):
    from deep_translator import LibreTranslator

    client = LibreTranslator(source="en", target="de", custom_url=server, api_key="unused", use_free_api=False)
    assert [client.translate(text) for text in SENTENCES] == expected


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_request_glossary_puts_its_terms_in_the_output_and_says_which(server):
    sentences = ["a b c", "d e f", "c a b"]
    answer = requests.post(server + "v1/translate", json={"q": sentences, "glossary": [["A B", "J I H"]]}, timeout=60)
    assert answer.ok, answer.text
    entries = answer.json()["translations"]
    assert ["J I H" in entry["text"] for entry in entries] == [True, False, True]
    assert [entry["applied_terms"] for entry in entries] == [[{"source": "a b", "target": "J I H"}], [],
                                                            [{"source": "a b", "target": "J I H"}]]
    for glossary, status, message in [([["a b"]], 400, "glossary entry 1: expected [source term, target term]"),
                                      ("a b=J", 400, "glossary must be a list"),
                                      ([["a", "b"]] * 1001, 413, "1,001 glossary entries")]:
        response = requests.post(server + "v1/translate", json={"q": "a b", "glossary": glossary}, timeout=30)
        assert response.status_code == status and message in response.json()["error"], response.text


@pytest.mark.slow
def test_format_html_translates_the_text_nodes_and_keeps_tags_and_attributes_on_both_routes(server):
    page = '<p class="intro" title="a b c">a b c <b style="x">d e f g</b></p><script>var s = "h i";</script><br/>h i'
    nodes = ["a b c", "d e f g", "h i"]
    translated = requests.post(server + "translate", json={"q": nodes, "source": "en", "target": "de"},
                               timeout=30).json()["translatedText"]
    expected = (f'<p class="intro" title="a b c">{html.escape(translated[0], quote=False)} '
                f'<b style="x">{html.escape(translated[1], quote=False)}</b></p><script>var s = "h i";</script><br/>'
                f'{html.escape(translated[2], quote=False)}')
    ask = {"q": page, "source": "en", "target": "de", "format": "html"}
    assert requests.post(server + "translate", json=ask, timeout=30).json() == {"translatedText": expected}
    assert requests.post(server + "translate", data=ask, timeout=30).json() == {"translatedText": expected}  # a form, as
    # LibreTranslate's own page and libretranslatepy send
    listed = requests.post(server + "translate", json={**ask, "q": [page, "<br>"]}, timeout=30).json()
    assert listed == {"translatedText": [expected, "<br>"]}
    (own,) = requests.post(server + "v1/translate", json=ask, timeout=30).json()["translations"]
    assert own["text"] == expected and own["n_best"] == [{"text": expected, "score": own["score"]}]
    for request, message in (({**ask, "format": "pdf"}, "format must be text or html, got 'pdf'"),
                             ({**ask, "alternatives": 2}, "without alternatives")):
        response = requests.post(server + "translate", json=request, timeout=30)
        assert response.status_code == 400 and message in response.json()["error"], response.text
    response = requests.post(server + "v1/translate", json={**ask, "attention": True}, timeout=30)
    assert response.status_code == 400 and "without attention" in response.json()["error"], response.text


@pytest.mark.slow
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
        ({"json": {"q": "a b", "source": "en", "target": "de", "alternatives": 16}}, 400,
         "invalid request: alternatives must be within 0..15, got 16"),
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
    widest = requests.post(server + "translate", json={"q": "a b", "source": "en", "target": "de", "alternatives": 15},
                           timeout=30)
    assert widest.ok and len(widest.json()["alternatives"]) <= 15, widest.text


@pytest.mark.parametrize("half_sent", [b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
                                       b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"q\": "])
@pytest.mark.slow
def test_a_request_not_sent_whole_within_the_read_timeout_loses_its_connection(server, half_sent):
    port = int(server.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # a kept-alive connection: the clock restarts
        assert b"200 OK" in client.recv(4096)
        began = time.monotonic()
        client.sendall(half_sent)
        client.settimeout(20)
        while client.recv(4096):  # the server closes the connection (the body, if any, is an error answer)
            pass
        assert 1.5 < time.monotonic() - began < 10  # --read-timeout 2


@pytest.mark.slow
def test_a_second_server_on_a_taken_port_says_so_in_one_paragraph_without_announcing_itself(tiny_checkpoint):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "serve", "--checkpoint", str(tiny_checkpoint),
                                 "--port", str(holder.getsockname()[1]), "--threads", "1"],
                                capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert result.returncode == 2, result.stderr
    assert "serving" not in result.stderr and result.stderr.startswith("error: cannot listen on 127.0.0.1:")
    assert "Address already in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow
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


@pytest.mark.slow
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


needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")


@pytest.fixture
def browser(monkeypatch):
    """Headless Debian Chromium under Selenium, never a downloaded browser or driver."""
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.mark.slow
@needs_chromium
def test_the_page_translates_as_you_type_and_hover_highlights_the_source_word(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
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
    driver.find_element(By.CSS_SELECTOR, "#glossary-box summary").click()
    driver.find_element(By.ID, "glossary").send_keys("a b = J I H")
    wait.until(lambda d: "J I H" in d.find_element(By.ID, "translation").text)
    assert driver.find_element(By.ID, "terms").text == "✓ a b → J I H"


@pytest.mark.slow
@needs_chromium
def test_the_page_of_a_server_with_an_api_key_sends_the_key_typed_in_its_field_and_keeps_it_in_the_tab(keyed_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = browser, WebDriverWait(browser, 60)
    driver.get(keyed_server)
    driver.find_element(By.ID, "source").send_keys("a b c")
    wait.until(lambda d: "invalid API key" in d.find_element(By.ID, "status").text)
    assert driver.find_element(By.ID, "translation").text == ""
    driver.find_element(By.ID, "api-key").send_keys(KEY)
    wait.until(lambda d: d.find_element(By.ID, "translation").text)
    expected = requests.post(keyed_server + "v1/translate", json={"q": "a b c", "n_best": 3},
                             headers={"Authorization": f"Bearer {KEY}"}, timeout=30).json()["translations"][0]["text"]
    assert driver.find_element(By.ID, "translation").text == expected and driver.find_element(By.ID, "status").text == ""
    driver.refresh()  # the same tab: the key is still there, and used
    assert driver.find_element(By.ID, "api-key").get_attribute("value") == KEY
    driver.find_element(By.ID, "source").send_keys("a b c")
    wait.until(lambda d: d.find_element(By.ID, "translation").text == expected)
    assert driver.execute_script("return localStorage.length") == 0  # nothing outlives the tab


@pytest.mark.slow
def test_a_server_with_an_api_key_takes_it_as_the_api_key_field_or_a_bearer_header(keyed_server):
    ask = {"q": "a b", "source": "en", "target": "de"}
    for extra, headers, status in (({}, {}, 403), ({"api_key": "wrong"}, {}, 403), ({"api_key": KEY}, {}, 200),
                                   ({}, {"Authorization": f"Bearer {KEY}"}, 200), ({}, {"Authorization": "Bearer wrong"}, 403),
                                   ({}, {"Authorization": f"bearer {KEY}"}, 200)):
        for route in ("translate", "v1/translate"):
            response = requests.post(keyed_server + route, json={**ask, **extra}, headers=headers, timeout=30)
            assert response.status_code == status, (route, extra, headers, response.text)
    from libretranslatepy import LibreTranslateAPI

    assert LibreTranslateAPI(keyed_server, api_key=KEY).translate("a b", "en", "de") == requests.post(
        keyed_server + "translate", json=ask, headers={"Authorization": f"Bearer {KEY}"}, timeout=30).json()["translatedText"]


class SlowTranslator:
    """Stands in for a Translator in the queue: takes ``seconds`` per call, records each call's
    batch size and thread."""

    def __init__(self, seconds: float):
        self.seconds, self.batches, self.threads = seconds, [], set()

    def translate(self, sentences, decode, return_attention=False, glossary=None):
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
