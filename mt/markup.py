"""HTML to translate: the text nodes of a fragment, and the fragment again with them translated.

LibreTranslate's ``format: "html"`` asks for the text of an HTML fragment to be translated and
its markup kept. Python's ``html.parser`` finds where each part of the fragment starts; text
(outside ``<script>`` and ``<style>``) is what gets translated, and everything else (tags with
their attributes as written, comments, doctypes, the content of scripts and styles) is copied
character for character. Each text node is translated on its own, with the whitespace around it
kept; its entities (``&amp;``) are decoded for the model and the translation is escaped again.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser

RAW_TEXT_ELEMENTS = ("script", "style")  # their content is code, not text to translate


@dataclass
class HtmlFragment:
    """An HTML fragment cut at its text nodes: ``markup[0] + text 0 + markup[1] + ... + markup[-1]``.
    ``texts`` are the text nodes (entities decoded, surrounding whitespace removed, none empty),
    ``markup`` the ``len(texts) + 1`` stretches of source around them, as written."""

    markup: list[str]
    texts: list[str]

    def fill(self, translations: list[str]) -> str:
        """The fragment with text node i replaced by ``translations[i]`` (escaped as HTML text)."""
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(self.texts)} text nodes but {len(translations)} translations")
        parts = [self.markup[0]]
        for translation, after in zip(translations, self.markup[1:]):
            parts += [escape(translation, quote=False), after]
        return "".join(parts)


class _Events(HTMLParser):
    """Records where each parser event starts, and the decoded text of each text node."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[int, int]] = []  # (line, column) of each event
        self.texts: list[str | None] = []  # an event's text, None for markup (or a script's code)
        self.raw_element: str | None = None

    def _event(self, text: str | None = None) -> None:
        self.starts.append(self.getpos())
        self.texts.append(text)

    def handle_data(self, data):
        self._event(None if self.raw_element else data)

    def handle_starttag(self, tag, attrs):
        self._event()
        if tag in RAW_TEXT_ELEMENTS:
            self.raw_element = tag

    def handle_endtag(self, tag):
        self._event()
        if tag == self.raw_element:
            self.raw_element = None

    def handle_startendtag(self, tag, attrs):
        self._event()

    def handle_comment(self, data):
        self._event()

    def handle_decl(self, decl):
        self._event()

    def handle_pi(self, data):
        self._event()

    def unknown_decl(self, data):
        self._event()


def split_html(fragment: str) -> HtmlFragment:
    """Cut ``fragment`` (any HTML, a whole page or a few tags; malformed HTML is read as a browser
    would, leniently) at its text nodes (see ``HtmlFragment``)."""
    parser = _Events()
    parser.feed(fragment)
    parser.close()
    line_offsets = [0]
    for line in fragment.split("\n")[:-1]:
        line_offsets.append(line_offsets[-1] + len(line) + 1)
    starts = [line_offsets[line - 1] + column for line, column in parser.starts] + [len(fragment)]
    nodes: list[list] = []  # [start, end, text]; the parser may hand one text node over in parts ("a ", "<", " b")
    for start, end, text in zip(starts, starts[1:], parser.texts):
        if text is not None and nodes and nodes[-1][2] is not None and nodes[-1][1] == start:
            nodes[-1][1:] = [end, nodes[-1][2] + text]
        else:
            nodes.append([start, end, text])
    markup, texts, kept_from = [], [], 0
    for start, end, text in nodes:
        if text is None or not text.strip():
            continue
        raw = fragment[start:end]
        leading, trailing = len(raw) - len(raw.lstrip()), len(raw) - len(raw.rstrip())
        markup.append(fragment[kept_from:start + leading])
        texts.append(text.strip())
        kept_from = end - trailing
    markup.append(fragment[kept_from:])
    return HtmlFragment(markup, texts)
