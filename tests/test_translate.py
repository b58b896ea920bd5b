"""Translator: how input is cut into chunks, and which chunking each input of `mt translate` gets."""

import io
import sys

import pytest
import torch
from typer.testing import CliRunner

import cli
import mt.translate
from mt.config import DecodeConfig
from mt.data import input_lines
from mt.errors import ConfigError
from mt.translate import Translator


@pytest.fixture
def translator(tiny_checkpoint):
    return Translator.from_checkpoint(tiny_checkpoint, device="cpu")


def record_chunks(monkeypatch) -> list[int]:
    sizes = []
    translate_chunk = mt.translate.translate_chunk
    monkeypatch.setattr(mt.translate, "translate_chunk",
                        lambda engine, chunk, *rest: sizes.append(len(chunk)) or translate_chunk(engine, chunk, *rest))
    return sizes


SENTENCES = [f"a b {letter}" for letter in "abcdefghij"]


def test_a_list_is_one_chunk_and_a_stream_starts_with_single_lines(translator, monkeypatch):
    sizes = record_chunks(monkeypatch)
    listed = [t.text for t in translator.translate(SENTENCES)]
    assert sizes == [10]  # a sequence: no chunk tails of greedy search beyond the last
    sizes.clear()
    streamed = [t.text for t in translator.translate(iter(SENTENCES))]
    assert sizes == [1, 2, 4, 3] and streamed == listed  # a pipe: its first line is answered at once
    sizes.clear()
    assert [t.text for t in translator.translate(iter(SENTENCES), chunking="whole")] == listed and sizes == [10]
    with pytest.raises(ConfigError, match="unknown chunking"):
        list(translator.translate(SENTENCES, chunking="pages"))


def test_lines_chunking_answers_each_line_before_reading_the_next(translator):
    read = []

    def typed():
        for sentence in SENTENCES[:3]:
            read.append(sentence)
            yield sentence

    results = translator.translate(typed(), chunking="lines")
    for answered in range(1, 4):
        next(results)
        assert len(read) == answered


def test_mt_translate_chunks_files_whole_and_a_terminal_by_lines(tiny_checkpoint, tmp_path, monkeypatch):
    chunkings = []
    translate = Translator.translate
    monkeypatch.setattr(Translator, "translate", lambda self, lines, decode, return_attention, chunking, progress, glossary:
                        chunkings.append(chunking) or translate(self, lines, decode, return_attention, chunking))
    source = tmp_path / "source.txt"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli.app, ["translate", "-i", str(source), "--checkpoint", str(tiny_checkpoint)]).exit_code == 0
    piped = runner.invoke(cli.app, ["translate", "--checkpoint", str(tiny_checkpoint)], input="a b\n")
    assert piped.exit_code == 0
    for dash in (["-"], ["-i", "-"]):  # "-" is stdin too, not a sentence or a file
        assert runner.invoke(cli.app, ["translate", *dash, "--checkpoint", str(tiny_checkpoint)], input="a b\n").stdout == piped.stdout

    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(io.BytesIO(b"a b\n")))
    assert chunkings == ["whole"] + ["growing"] * 3  # a file, pipes
    assert input_lines([], None, "strict")[1] == "lines"
    with source.open(encoding="utf-8") as redirected:  # mt translate < source.txt
        monkeypatch.setattr(sys, "stdin", redirected)
        assert input_lines([], None, "strict")[1] == "whole"


def test_int8_quantization_fuses_the_feed_forward_relu_and_stays_close_to_fp32(tiny_checkpoint):
    fp32 = Translator.from_checkpoint(tiny_checkpoint, device="cpu").model
    int8 = Translator.from_checkpoint(tiny_checkpoint, device="cpu", quantize="int8").model
    from torch.ao.nn.intrinsic.quantized.dynamic import LinearReLU
    from torch.ao.nn.quantized.dynamic import Linear

    assert isinstance(int8.decoder_layers[0].feed_forward[0], LinearReLU) and isinstance(int8.output, Linear)
    src = torch.tensor([[5, 6, 7, 3]])
    tgt = torch.tensor([[2, 8, 9]])
    with torch.inference_mode():
        reference, quantized = fp32(src, src != 0, tgt), int8(src, src != 0, tgt)
    assert (quantized - reference).abs().max() < 0.05 * reference.abs().max()
    with pytest.raises(ConfigError, match="the only one is int8"):
        Translator.from_checkpoint(tiny_checkpoint, device="cpu", quantize="int4")


def test_progress_counts_every_sentence_as_its_batch_finishes(tiny_checkpoint):
    translator = Translator.from_checkpoint(tiny_checkpoint, device="cpu")
    counts = []
    sentences = ["a b c d e f"] * 40 + ["", "a"] * 10
    results = list(translator.translate(sentences, DecodeConfig(batch_tokens=64),
                                        progress=counts.append))
    assert len(results) == 60 and sum(counts) == 60 and len(counts) > 2 and counts[0] == 10  # the empty ones first


def test_bf16_on_cpu_stores_the_weights_in_bf16_and_translates_as_fp32_does(tiny_checkpoint):
    fp32 = Translator.from_checkpoint(tiny_checkpoint, device="cpu")
    bf16 = Translator.from_checkpoint(tiny_checkpoint, device="cpu", precision="bf16")
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in fp32.model.parameters()} == {torch.float32}
    sentences = ["a b c", "d e", "f g h i"]
    decode = DecodeConfig(beam_size=2, max_length=8)
    ours, theirs = list(fp32.translate(sentences, decode)), list(bf16.translate(sentences, decode))
    assert all(abs(a.score - b.score) < 0.5 for a, b in zip(ours, theirs))  # bf16 keeps 8 bits of mantissa
