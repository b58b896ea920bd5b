"""An HTTP API over a ``TranslationEngine``: LibreTranslate's routes, ``mt``'s own with attention, and a page.

The app is Starlette (ASGI), served by uvicorn from ``mt serve``. Routes:

- ``POST /translate`` (LibreTranslate's API: JSON, form or query fields ``q`` (a string or a
  list), ``source``, ``target``, ``format`` ("text", or "html": text nodes translated, markup
  kept, see ``mt.markup``), ``alternatives``) ->
  ``{"translatedText": ...}`` (a list for a list, plus ``alternatives`` when asked);
- ``GET /languages`` -> ``[{"code", "name", "targets"}]``;
- ``POST /v1/translate`` (``mt``'s own, JSON): ``q``, ``source``, ``target``, ``format``, ``beam_size``,
  ``length_penalty``, ``n_best``, ``attention``, ``glossary`` (``[[source term, target term],
  ...]``, added to the server's ``--glossary``) -> per sentence the translation, the n-best list
  with scores, the glossary terms applied and missed and, when asked, the pieces of both sides and
  the attention (L, H, T, S) as nested lists (schema in ``docs/serve.md``);
- ``GET /health``; ``GET /`` the page (``mt/web/``) that translates as you type and draws the
  attention.

Errors are LibreTranslate's: ``{"error": "..."}`` with 400 (bad input), 403 (wrong API key),
404 (no model for the language pair), 413 (over a size limit), 503 (the queue is full, or a
request waited past its time limit).

Concurrent requests are batched: each waits in one queue, and a worker takes what waits and what
comes while the batch is short of the last one's load (see ``BatchingQueue._gather``), groups it
by decoding settings, and runs one ``TranslationEngine.translate`` call per group on the model thread,
so the model sees batches as ``mt translate -i FILE`` does and the event loop keeps serving.

All of torch's work (loading the models, translating, reading attention tensors) runs on one
``ModelThread``: libgomp gives every thread that starts a parallel region a team of its own, and
with more team threads than cores it lets idle workers sleep at once instead of spinning, so
every operator waits for them to wake. On 2 cores with 2 torch threads, batches of 16 Tatoeba
sentences decoded at 252 sentences/s on the thread that loaded the model and 116 on another.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hmac
import json
import math
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mt.config import DecodeConfig
from mt.errors import ConfigError, MTError
from mt.glossary import Glossary
from mt.markup import HtmlFragment, split_html

if TYPE_CHECKING:  # mt.translate loads torch: the annotations need only the name
    from mt.translate import TranslationEngine

WEB_DIR = Path(__file__).parent / "web"
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "de": "German", "fr": "French", "cs": "Czech", "ja": "Japanese",
                  "ko": "Korean", "es": "Spanish", "it": "Italian", "ru": "Russian"}


@dataclass
class Limits:
    """What one request may ask and how long it may wait. Bytes of the request body, characters of
    all its texts, sentences, requests waiting, seconds."""

    max_request_bytes: int = 1 << 20
    max_characters: int = 50_000
    max_sentences: int = 512
    max_queue: int = 256
    timeout: float = 60.0
    max_beam_size: int = 16
    max_glossary_entries: int = 1000  # entries of a request's own glossary
    batch_wait: float = 0.02  # seconds the worker may wait for more requests before it translates
    batch_sentences: int = 2048
    read_timeout: float = 30.0  # seconds a client has to send a whole request (headers and body)
    keep_alive: int = 5  # seconds an idle connection stays open after a response


class ModelThread:
    """The one thread that runs the server's torch work (see the module's docstring for why one)."""

    def __init__(self):
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mt-model")

    def call(self, function: Callable, *args, **kwargs):
        """``function(*args, **kwargs)`` on the model thread, waited for; its exception is raised here."""
        return self.executor.submit(function, *args, **kwargs).result()

    async def run(self, function: Callable, *args):
        """``function(*args)`` on the model thread, awaited without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)


class RequestError(Exception):
    """A request the server refuses: ``status`` is the HTTP status, the message goes to the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    """One request's sentences waiting in the queue, and the future its handler awaits: the
    ``render`` of each sentence's ``Translation``, made on the model thread."""

    translator: TranslationEngine
    sentences: list[str]
    decode: DecodeConfig
    attention: bool
    glossary: Glossary | None = None
    render: Callable = lambda translation: translation
    future: asyncio.Future = field(default=None)


class BatchingQueue:
    """Gathers jobs into batches (``_gather``) and translates each group of a batch's jobs with the
    same model and settings in one ``TranslationEngine.translate`` call on ``model_thread`` (one at a
    time: torch already uses every core)."""

    def __init__(self, limits: Limits, model_thread: ModelThread):
        self.limits, self.model_thread = limits, model_thread
        self.queue: asyncio.Queue[Job] | None = None
        self.worker: asyncio.Task | None = None
        self.jobs = self.batches = 0  # requests translated, and the translate calls they took
        self.in_flight = self.peak = 0  # requests submitted and not yet answered: now, and the most since the last batch

    async def start(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.limits.max_queue)
        self.worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self.worker:
            self.worker.cancel()

    async def submit(self, job: Job) -> list:
        """The translations of ``job``; ``RequestError`` 503 when the queue is full or the job waits
        longer than ``limits.timeout``."""
        job.future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            raise RequestError(503, f"the server is busy: {self.limits.max_queue} requests are waiting; retry later") from None
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:  # on a timeout wait_for cancels the future, and the worker skips the job
            return await asyncio.wait_for(job.future, self.limits.timeout)
        except asyncio.TimeoutError:
            raise RequestError(503, f"the translation took longer than {self.limits.timeout:g} s; retry later") from None
        finally:
            self.in_flight -= 1

    async def _gather(self) -> list[Job]:
        """The next batch's jobs: all that wait, then more as they come until there are as many as
        the server held at once during the last batch (its clients' next requests), at most
        ``limits.batch_wait`` seconds after the first and ``limits.batch_sentences`` sentences.

        Without the wait, clients answered by one batch come back while the next runs, and a
        steady load splits into two alternating half-size batches."""
        loop = asyncio.get_running_loop()
        jobs = [await self.queue.get()]
        deadline = loop.time() + self.limits.batch_wait
        expected, self.peak = self.peak, self.in_flight
        sentences = len(jobs[0].sentences)
        while sentences < self.limits.batch_sentences:
            if self.queue.empty() and len(jobs) >= expected:
                break
            try:
                job = await asyncio.wait_for(self.queue.get(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                break
            jobs.append(job)
            sentences += len(job.sentences)
        return jobs

    async def _work(self) -> None:
        while True:
            jobs = await self._gather()
            groups: dict[tuple, list[Job]] = {}
            for job in jobs:
                if not job.future.done():  # its client may have gone, or its time run out
                    key = (id(job.translator), dataclasses.astuple(job.decode), job.attention, id(job.glossary))
                    groups.setdefault(key, []).append(job)
            for group in groups.values():
                self.jobs, self.batches = self.jobs + len(group), self.batches + 1
                await self.model_thread.run(_translate_group, group, asyncio.get_running_loop())


def _translate_group(jobs: list[Job], loop: asyncio.AbstractEventLoop) -> None:
    """Translate the sentences of ``jobs`` (same model and settings) in one call; hand each job its
    share, or the error, through its future."""
    first = jobs[0]
    sentences = [sentence for job in jobs for sentence in job.sentences]
    try:
        results = list(first.translator.translate(sentences, first.decode, return_attention=first.attention,
                                                  glossary=first.glossary))
    except Exception as error:  # noqa: BLE001 (a failed batch must answer its clients, not kill the worker)
        for job in jobs:
            loop.call_soon_threadsafe(_settle, job.future, None, error)
        return
    start = 0
    for job in jobs:
        share = [job.render(result) for result in results[start: start + len(job.sentences)]]
        start += len(job.sentences)
        loop.call_soon_threadsafe(_settle, job.future, share, None)


def _settle(future: asyncio.Future, result, error) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Models:
    """The translators the server holds, by language pair (``(src, tgt)``)."""

    def __init__(self, translators: list[TranslationEngine]):
        self.by_pair = {(t.tokenizer.src_lang, t.tokenizer.tgt_lang): t for t in translators}

    def languages(self) -> list[dict[str, Any]]:
        sources = sorted({src for src, _ in self.by_pair})
        return [{"code": src, "name": LANGUAGE_NAMES.get(src, src),
                 "targets": sorted(tgt for s, tgt in self.by_pair if s == src)} for src in sources]

    def get(self, source: str | None, target: str | None) -> TranslationEngine:
        """The translator for ``source`` -> ``target`` ("auto" or nothing: the only source that has
        ``target``); ``RequestError`` 404 if there is none."""
        if source in (None, "", "auto"):
            sources = [src for src, tgt in self.by_pair if tgt == target or not target]
            source = sources[0] if len(sources) == 1 else source
        if not target and source:
            targets = [tgt for src, tgt in self.by_pair if src == source]
            target = targets[0] if len(targets) == 1 else target
        translator = self.by_pair.get((source, target))
        if translator is None:
            pairs = ", ".join(f"{s}->{t}" for s, t in self.by_pair)
            raise RequestError(404, f"no model translates {source or '?'}->{target or '?'}; this server has {pairs}")
        return translator


async def _fields(request) -> dict[str, Any]:
    """The request's fields from its JSON or form body, then its query string (deep-translator
    sends them there); ``RequestError`` 413 over the size limit, 400 for a body that is not JSON."""
    limits: Limits = request.app.state.limits
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_request_bytes:
        raise RequestError(413, f"the request has {int(declared):,} bytes; the limit is {limits.max_request_bytes:,}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limits.max_request_bytes:
            raise RequestError(413, f"the request is over {limits.max_request_bytes:,} bytes")
    fields: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type == "application/json" or (body[:1] in (b"{", b"[") and content_type != "application/x-www-form-urlencoded"):
        body = bytes(body)
        try:
            parsed = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(400, f"the body is not valid JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise RequestError(400, "the JSON body must be an object with a 'q' field")
        fields.update(parsed)
    elif body:
        from urllib.parse import parse_qsl

        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise RequestError(400, "the form body is not UTF-8") from None
        form: dict[str, list[str]] = {}
        for key, value in pairs:
            form.setdefault(key, []).append(value)
        fields.update({key: values if len(values) > 1 else values[0] for key, values in form.items()})
    return fields


def _sentences(fields: dict[str, Any], limits: Limits) -> tuple[list[str], bool]:
    """The texts of ``q`` and whether it was a list; ``RequestError`` 400/413 for bad or oversized ones."""
    texts = fields.get("q")
    if texts is None:
        raise RequestError(400, "invalid request: missing q parameter")
    is_list = isinstance(texts, list)
    texts = texts if is_list else [texts]
    if not all(isinstance(text, str) for text in texts):
        raise RequestError(400, "invalid request: q must be a string or a list of strings")
    if not is_list and not texts[0].strip():
        raise RequestError(400, "invalid request: q is empty")
    if len(texts) > limits.max_sentences:
        raise RequestError(413, f"{len(texts):,} texts in one request; the limit is {limits.max_sentences:,}")
    characters = sum(map(len, texts))
    if characters > limits.max_characters:
        raise RequestError(413, f"{characters:,} characters in one request; the limit is {limits.max_characters:,}")
    return texts, is_list


def _number(fields: dict[str, Any], key: str, kind: type, default, low: float, high: float):
    value = fields.get(key, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise RequestError(400, f"invalid request: {key} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise RequestError(400, f"invalid request: {key} must be within {low:g}..{high:g}, got {value!r}")
    return value


def _decode(translator: TranslationEngine, fields: dict[str, Any], limits: Limits, n_best: int) -> DecodeConfig:
    """The translator's decoding settings with a request's beam_size and length_penalty, beams
    enough for ``n_best``; ``RequestError`` 400 for a value out of range or settings that do not validate."""
    base = translator.config.decode
    beam_size = _number(fields, "beam_size", int, max(base.beam_size, n_best), 1, limits.max_beam_size)
    length_penalty = _number(fields, "length_penalty", float, base.length_penalty, 0, 10)
    try:
        return base.with_overrides(beam_size=max(beam_size, n_best), n_best=n_best, length_penalty=length_penalty)
    except ConfigError as error:
        raise RequestError(400, f"invalid request: {error}") from None


def _glossary(server: Glossary | None, entries, limits: Limits) -> Glossary | None:
    """The server's glossary with a request's ``glossary`` field (``[[source, target], ...]``)
    added; ``RequestError`` 400 for a malformed one, 413 for one over ``limits.max_glossary_entries``."""
    if entries in (None, []):
        return server
    if not isinstance(entries, list):
        raise RequestError(400, "invalid request: glossary must be a list of [source term, target term] pairs")
    if len(entries) > limits.max_glossary_entries:
        raise RequestError(413, f"{len(entries):,} glossary entries in one request; the limit is "
                                f"{limits.max_glossary_entries:,}")
    try:
        own = Glossary.from_pairs(entries, "invalid request: glossary")
    except MTError as error:
        raise RequestError(400, str(error)) from None
    return server.merged(own) if server else own


def _check_key(request, fields: dict[str, Any]) -> None:
    """``RequestError`` 403 unless the server has no key or the request carries it, as the
    ``api_key`` field (LibreTranslate's way) or as ``Authorization: Bearer KEY`` (the page's)."""
    key = request.app.state.api_key
    if not key:
        return
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    given = bearer.strip() if scheme.lower() == "bearer" else fields.get("api_key")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), key.encode()):
        raise RequestError(403, "invalid API key")


async def _translate(request, own_api: bool):
    limits: Limits = request.app.state.limits
    fields = await _fields(request)
    _check_key(request, fields)
    html = _is_html(fields)
    texts, is_list = _sentences(fields, limits)
    translator = request.app.state.models.get(fields.get("source"), fields.get("target"))
    # n_best hypotheses need a beam of n_best; LibreTranslate's alternatives come besides the translation
    alternatives = (_number(fields, "n_best", int, 1, 0, limits.max_beam_size) if own_api
                    else _number(fields, "alternatives", int, 0, 0, limits.max_beam_size - 1))
    n_best = max(alternatives, 1) if own_api else alternatives + 1
    attention = own_api and fields.get("attention") in (True, "true", "1", 1)
    if html and (n_best > 1 or attention):
        raise RequestError(400, "invalid request: format html gives one translation of each text, without "
                                f"{'attention' if attention else 'n_best' if own_api else 'alternatives'}")
    fragments = [split_html(text) for text in texts] if html else []
    job = Job(translator, [node for fragment in fragments for node in fragment.texts] if html else texts,
              _decode(translator, fields, limits, n_best), attention,
              _glossary(request.app.state.glossary, fields.get("glossary") if own_api else None, limits))
    if own_api and not html:
        job.render = lambda result: _own_result(result, attention)
    results = await request.app.state.queue.submit(job) if job.sentences else []
    if html:
        results = _fill_fragments(texts, fragments, results)
        results = [_own_result(result, attention=False) for result in results] if own_api else results
    if own_api:
        return {"source": translator.tokenizer.src_lang, "target": translator.tokenizer.tgt_lang,
                "translations": results}
    texts_out = [result.text for result in results]
    body: dict[str, Any] = {"translatedText": texts_out if is_list else texts_out[0]}
    if alternatives:
        others = [[text for text, _ in result.n_best[1:]] for result in results]
        body["alternatives"] = others if is_list else others[0]
    return body


def _is_html(fields: dict[str, Any]) -> bool:
    """Whether the request's ``format`` is ``html`` (else ``text``, the default); 400 for another."""
    text_format = fields.get("format") or "text"
    if text_format not in ("text", "html"):
        raise RequestError(400, f"invalid request: format must be text or html, got {text_format!r}")
    return text_format == "html"


def _fill_fragments(texts: list[str], fragments: list[HtmlFragment], results: list) -> list[Translation]:
    """The translation of each HTML text: its fragment with its text nodes translated (``results``,
    all fragments' nodes in order), scored with the sum of its nodes' scores."""
    from mt.translate import Translation

    filled, start = [], 0
    for source, fragment in zip(texts, fragments):
        nodes = results[start: start + len(fragment.texts)]
        start += len(fragment.texts)
        text, score = fragment.fill([node.text for node in nodes]), sum(node.score for node in nodes)
        filled.append(Translation(source, text, score, n_best=[(text, score)]))
    return filled


def _own_result(result, attention: bool) -> dict[str, Any]:
    """One sentence of ``POST /v1/translate``'s answer (see ``docs/serve.md``): with ``attention``,
    the weights between pieces and between words (``mt.alignment``), and the word alignment."""
    from mt.alignment import alignment_labels, pharaoh, word_alignment

    entry: dict[str, Any] = {"text": result.text, "score": result.score,
                             "n_best": [{"text": text, "score": score} for text, score in result.n_best],
                             "applied_terms": [{"source": term.text, "target": term.target} for term in result.applied_terms],
                             "missed_terms": [{"source": term.text, "target": term.target} for term in result.missed_terms]}
    if attention and result.attention is not None:
        pieces, target_pieces, source_pieces = alignment_labels(result, "piece")
        words, target_words, source_words = alignment_labels(result, "word")
        entry["attention"] = {"target_pieces": target_pieces, "source_pieces": source_pieces, "weights": _rounded(pieces),
                              "target_words": target_words, "source_words": source_words, "word_weights": _rounded(words),
                              "alignment": pharaoh(word_alignment(result))}
    elif attention:
        entry["attention"] = None
    return entry


def _rounded(attention) -> list:
    """Attention (T, L, H, S) as nested lists [layer][head][target][source], 4 decimals."""
    return [[[[round(float(w), 4) for w in row] for row in head] for head in layer]
            for layer in attention.permute(1, 2, 0, 3).tolist()]


def attention_html(translations: list, pair: str) -> str:
    """The page's view of ``translations`` (``mt.translate.Translation`` with attention) as one
    self-contained HTML file: the page, its CSS and script inlined, the data as JSON (text is
    set with ``textContent`` by the script, never parsed as markup)."""
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    data = {"pair": pair, "items": [{"source": t.source, "translation": _own_result(t, True)} for t in translations]}
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    style = (WEB_DIR / "style.css").read_text(encoding="utf-8")
    script = (WEB_DIR / "app.js").read_text(encoding="utf-8").replace("</", "<\\/")
    page = page.replace('<link rel="stylesheet" href="/static/style.css">', f"<style>\n{style}</style>")
    return page.replace('<script src="/static/app.js"></script>',
                        f"<script>window.MT_DATA = {payload};</script>\n<script>\n{script}</script>")


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` and listening, for ``run``; ``ConfigError`` naming
    the address when it cannot be had (taken by another server, not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restarted server need not wait out TIME_WAIT
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        hint = ("another server (another mt serve?) listens there: stop it, or choose another --port"
                if error.errno == errno.EADDRINUSE else "choose another --host or --port")
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}; {hint}") from None
    return sock


def run(app, sock: socket.socket, limits: Limits) -> None:
    """Serve ``app`` with uvicorn on ``sock`` (see ``listen``) until Ctrl-C. A client has
    ``limits.read_timeout`` seconds to send a whole request, from its connection or the end of its
    last response, and an idle connection is closed ``limits.keep_alive`` seconds after a response."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", http=_timed_protocol(limits.read_timeout),
                            timeout_keep_alive=limits.keep_alive)
    uvicorn.Server(config).run(sockets=[sock])


def _timed_protocol(seconds: float) -> type:
    """uvicorn's HTTP/1.1 protocol (h11), which has no timeout for reading a request, with one: a
    connection that has not sent a whole request (headers and body) ``seconds`` after it opened
    or after its last response is closed, so a half-sent request does not hold it for good."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._start_clock()

        def handle_events(self) -> None:
            super().handle_events()
            if self.deadline is not None and self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                self.deadline.cancel()  # the whole request is in
                self.deadline = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._start_clock()  # the next request of a kept-alive connection

        def connection_lost(self, exc) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            super().connection_lost(exc)

        def _start_clock(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            self.deadline = self.loop.call_later(seconds, self.transport.close)

    return TimedH11Protocol


def build_app(translators: list[TranslationEngine], model_thread: ModelThread, limits: Limits | None = None,
              api_key: str | None = None, glossary: Glossary | None = None):
    """The Starlette app serving ``translators`` (``mt.translate.TranslationEngine``, one per language
    pair, loaded by ``model_thread.call``) on ``model_thread`` under ``limits``; with ``api_key``,
    requests must carry it as ``api_key`` or ``Authorization: Bearer`` (``_check_key``);
    ``glossary`` applies to every request."""
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    limits = limits or Limits()
    queue = BatchingQueue(limits, model_thread)

    async def translate(request):
        return await _answer(_translate(request, own_api=False))

    async def translate_own(request):
        return await _answer(_translate(request, own_api=True))

    async def _answer(work):
        try:
            return JSONResponse(await work)
        except RequestError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        except ClientDisconnect:
            return JSONResponse({"error": "the client disconnected"}, status_code=400)
        except MTError as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    async def languages(request):
        return JSONResponse(request.app.state.models.languages())

    async def health(request):
        return JSONResponse({"status": "ok", "queued": queue.queue.qsize() if queue.queue else 0,
                             "requests_translated": queue.jobs, "batches": queue.batches,
                             "models": [f"{s}->{t}" for s, t in request.app.state.models.by_pair],
                             "uptime_s": round(time.time() - started, 1)})

    async def page(request):
        return FileResponse(WEB_DIR / "index.html")

    async def font(request):
        from pylopdf_fonts_zh_cn import sans_path

        return FileResponse(sans_path(), media_type="font/otf")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await queue.start()
        yield
        await queue.stop()

    started = time.time()
    app = Starlette(routes=[
        Route("/", page), Route("/languages", languages, methods=["GET", "POST"]), Route("/health", health),
        Route("/translate", translate, methods=["POST"]), Route("/v1/translate", translate_own, methods=["POST"]),
        Route("/font/NotoSansSC-Regular.otf", font), Mount("/static", StaticFiles(directory=WEB_DIR)),
    ], lifespan=lifespan)
    app.state.models, app.state.limits, app.state.queue, app.state.api_key = Models(translators), limits, queue, api_key
    app.state.glossary = glossary
    return app
