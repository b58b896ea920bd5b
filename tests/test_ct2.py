"""mt export --format ctranslate2: CTranslate2 decodes an exported model as mt does."""

import json

import pytest
import torch

from mt.batching import collate
from mt.config import DecodeConfig, build_config
from mt.train import train
from mt.translate import Translator

from conftest import synthetic_sentences, write_pair

ctranslate2 = pytest.importorskip("ctranslate2", reason="CTranslate2 is an optional dependency: pip install 'mt[ct2]'")

from mt.ct2 import CT2_TRANSLATE_OPTIONS, export_ctranslate2, source_tokens  # noqa: E402


def trained_checkpoint(directory, pre_norm: bool, joint: bool, positions: str):
    """A tiny Transformer trained for a few seconds to reverse synthetic sentences (so that its
    outputs are real sentences, not the repetitions of an untrained model)."""
    sources = synthetic_sentences(1200, seed=1)
    targets = [" ".join(reversed(s.split())) for s in sources]
    dev = synthetic_sentences(40, seed=2)
    config = build_config(None, None, {
        "data": {"train": write_pair(directory, "train", sources, targets), "dev": write_pair(directory, "dev", dev, dev),
                 "vocab_size": 30, "model_type": "bpe", "joint_vocab": joint},
        "model": {"d_model": 64, "ff_dim": 128, "heads": 4, "encoder_layers": 2, "decoder_layers": 2, "dropout": 0.0,
                  "pre_norm": pre_norm, "positions": positions},
        "train": {"batch_tokens": 400, "learning_rate": 0.003, "warmup_steps": 50, "max_steps": 150, "validate_every": 150,
                  "precision": "fp32", "threads": 1},
    })
    train(config, directory / "run")
    return directory / "run"


@pytest.mark.parametrize("pre_norm, joint, positions", [(True, True, "sinusoidal"), (False, False, "learned")])
def test_an_exported_model_decodes_greedily_as_mt_does_with_the_same_token_log_probabilities(tmp_path, pre_norm, joint, positions):
    run = trained_checkpoint(tmp_path, pre_norm, joint, positions)
    exported = export_ctranslate2(run, tmp_path / "ct2")
    assert (exported / "model.bin").is_file() and json.loads((exported / "mt_config.json").read_text())["model"]["pre_norm"] == pre_norm
    translator = Translator.from_checkpoint(run, device="cpu")
    engine = ctranslate2.Translator(str(exported), device="cpu", inter_threads=1, intra_threads=1)
    sentences = synthetic_sentences(60, seed=3)
    ours = list(translator.translate(sentences, DecodeConfig(beam_size=1)))
    sources = source_tokens(translator.tokenizer, collate(range(len(sentences)), translator.tokenizer.encode_src(sentences), None))
    assert sources[0] == translator.tokenizer.src_pieces(sentences[0]) + ["</s>"]  # mt's pieces and EOS, no padding
    theirs = engine.translate_batch(sources, beam_size=1, max_decoding_length=256, **CT2_TRANSLATE_OPTIONS)
    assert len({len(o.tgt_pieces) for o in ours}) > 2  # real outputs of several lengths
    assert [o.tgt_pieces for o in ours] == [r.hypotheses[0] for r in theirs]
    scored = engine.score_batch(sources, [o.tgt_pieces for o in ours])
    model = translator.model
    for sentence, result, score in zip(sentences, ours, scored):
        ids = translator.tokenizer.encode_src([sentence])[0] + [3]
        tgt = [2] + translator.tokenizer.tgt.piece_to_id(result.tgt_pieces)
        with torch.no_grad():
            src = torch.tensor([ids])
            log_probs = model(src, src != 0, torch.tensor([tgt])).log_softmax(-1)[0]
        labels = tgt[1:] + [3]
        expected = [float(log_probs[i, label]) for i, label in enumerate(labels)]
        assert score.log_probs == pytest.approx(expected, abs=1e-4)


def test_both_engines_cut_long_sources_keep_their_pieces_and_report_progress_per_batch(tmp_path, tiny_checkpoint):
    from mt.ct2 import CT2Translator

    engines = [Translator.from_checkpoint(tiny_checkpoint, device="cpu"),
               CT2Translator(export_ctranslate2(tiny_checkpoint, tmp_path / "ct2"), threads=1)]
    sentences = ["a b c d e f g h i j"] + ["a b"] * 12 + [""]
    decode = DecodeConfig(beam_size=1, max_source_tokens=4, batch_tokens=16)
    seen = []
    for engine in engines:
        counts = []
        results = list(engine.translate(sentences, decode, progress=counts.append))
        seen.append((counts, [(result.truncated, result.src_pieces) for result in results]))
    assert seen[1] == seen[0]  # one pipeline: the same cuts, pieces and batches
    counts, sources = seen[0]
    assert counts[0] == 1 and sum(counts) == len(sentences) and len(counts) > 2  # the empty one first, then per batch
    assert sources[0][0] and len(sources[0][1]) == 4 and sources[1] == (False, engines[0].tokenizer.src_pieces("a b"))
    assert sources[-1] == (False, [])


def test_only_transformers_export(tmp_path, tiny_checkpoint):
    from mt.errors import ConfigError

    with pytest.raises(ConfigError, match="quantization"):
        export_ctranslate2(tiny_checkpoint, tmp_path / "x", quantization="int4")
    config = build_config("rnn-bahdanau", None, {"model": {"src_vocab_size": 40, "tgt_vocab_size": 40, "hidden_size": 16,
                                                            "embedding_dim": 8}})
    from mt.checkpoint import load_checkpoint, write_checkpoint
    from mt.models import build_model

    _, tokenizer, _, _ = load_checkpoint(tiny_checkpoint)
    config.model.src_vocab_size = config.model.tgt_vocab_size = tokenizer.src_vocab_size
    rnn = write_checkpoint(tmp_path / "rnn", build_model(config.model), tokenizer, config)
    with pytest.raises(ConfigError, match="RNN"):
        export_ctranslate2(rnn, tmp_path / "y")


def test_mt_export_and_translate_engine_ctranslate2_on_the_command_line(tmp_path):
    from test_cli import invoke

    run = trained_checkpoint(tmp_path, pre_norm=True, joint=True, positions="sinusoidal")
    sentences = synthetic_sentences(5, seed=4)
    code, output = invoke("export", run, tmp_path / "ct2", "--format", "ctranslate2", "--quantization", "int8")
    assert code == 0 and "int8" in output, output
    code, ours = invoke("translate", *sentences, "--checkpoint", run, "--beam-size", "1")
    assert code == 0, ours
    code, theirs = invoke("translate", *sentences, "", "--checkpoint", tmp_path / "ct2", "--engine", "ctranslate2", "--beam-size", "1")
    assert code == 0, theirs
    assert len(theirs.splitlines()) == 6 and theirs.splitlines()[-1] == ""
    assert sum(a == b for a, b in zip(ours.splitlines(), theirs.splitlines())) >= 4  # int8 may change a word
    code, output = invoke("translate", "a b", "--checkpoint", tmp_path / "ct2", "--engine", "ctranslate2", "--show-attention")
    assert code == 2 and "attention" in output
    code, output = invoke("translate", "a b", "--checkpoint", run, "--engine", "ctranslate2")
    assert code == 2 and "mt export --format ctranslate2" in output
