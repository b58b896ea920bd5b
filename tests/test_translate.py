"""Translator: how input is cut into chunks."""

from mt.translate import Translator


def test_a_list_is_one_chunk_and_a_stream_starts_with_single_lines(tiny_checkpoint, monkeypatch):
    translator = Translator.from_checkpoint(tiny_checkpoint, device="cpu", threads=1)
    sizes = []
    translate_chunk = translator._translate_chunk
    monkeypatch.setattr(translator, "_translate_chunk", lambda chunk, *rest: sizes.append(len(chunk)) or translate_chunk(chunk, *rest))
    sentences = [f"a b {letter}" for letter in "abcdefghij"]
    listed = [t.text for t in translator.translate(sentences)]
    assert sizes == [10]  # a sequence: no chunk tails of greedy search beyond the last
    sizes.clear()
    streamed = [t.text for t in translator.translate(iter(sentences))]
    assert sizes == [1, 2, 4, 3] and streamed == listed  # a pipe: its first line is answered at once
