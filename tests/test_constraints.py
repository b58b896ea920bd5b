"""Lexically constrained beam search (mt.constraints) through Translator.translate with a glossary."""

import pytest
import torch

from mt.config import DecodeConfig, RunConfig
from mt.constraints import NOT_TEXT, TargetVocabulary, TermAutomaton
from mt.ensemble import Ensemble
from mt.glossary import Glossary
from mt.models import build_model
from mt.translate import Translator, prepare_model

from conftest import synthetic_sentences

# Targets the untrained models would not write by chance; each source term occurs in some sentences only.
GLOSSARY = Glossary.from_pairs([["a b", "J I H"], ["c", "G G"], ["d e f", "B"]])


def run(texts: list[str], term: str) -> int:
    """The automaton's state after the pieces ``texts``, from state 0 (len(term) = met)."""
    vocabulary = TargetVocabulary([NOT_TEXT, "机", "器", "学", "习", "机器", "器学习", "学习", " ", "我机", "机器学习了"])
    automaton = TermAutomaton.build(term, vocabulary)
    state = 0
    for text in texts:
        state = int(automaton.table[state, vocabulary.ids[text]]) if state < len(term) else state
    return state


@pytest.mark.parametrize("pieces", [["机器", "学习"], ["机", "器学习"], ["机", "器", "学", "习"], ["我机", "器学习"],
                                    ["机器学习了"], ["机", "机器", "学习"]])
def test_a_term_is_met_however_it_is_cut_into_pieces(pieces):
    assert run(pieces, "机器学习") == 4


@pytest.mark.parametrize("pieces, state", [(["机器", " ", "学习"], 0), (["机器"], 2), (["机", "学习"], 0), (["学习", "机"], 1)])
def test_progress_is_characters_of_the_term_and_a_break_undoes_it(pieces, state):
    assert run(pieces, "机器学习") == state


def tiny_model(tokenizer, arch: str, seed: int):
    torch.manual_seed(seed)
    config = RunConfig()
    config.model.arch = arch
    config.model.d_model, config.model.ff_dim, config.model.encoder_layers, config.model.decoder_layers = 32, 64, 1, 1
    config.model.embedding_dim, config.model.hidden_size = 16, 32
    config.model.src_vocab_size = config.model.tgt_vocab_size = tokenizer.src_vocab_size
    config.decode.max_length = 24
    return build_model(config.model).eval(), config


SOURCES = synthetic_sentences(24, seed=5)


def translator_for(tokenizer, arch: str, ensemble: bool = False, precision: str = "fp32") -> Translator:
    model, config = tiny_model(tokenizer, arch, seed=0)
    if ensemble:
        model = Ensemble([model, tiny_model(tokenizer, arch, seed=1)[0]])
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    if precision != "fp32" or arch == "int8":
        model = prepare_model(model, None, dtype, torch.device("cpu"))
    return Translator(model, tokenizer, config, torch.device("cpu"), dtype)


def check(translator: Translator, beam_size: int, exact: bool = True) -> None:
    decode = DecodeConfig(beam_size=beam_size, max_length=24)
    plain = list(translator.translate(SOURCES, decode))
    constrained = list(translator.translate(SOURCES, decode, glossary=GLOSSARY))
    assert sum(bool(GLOSSARY.match(source)) for source in SOURCES) >= 8  # the test decodes mixed batches
    for source, before, after in zip(SOURCES, plain, constrained):
        found = GLOSSARY.match(source)
        if not found:  # a sentence without a term decodes exactly as without the glossary
            assert not exact or (after.text, after.score) == (before.text, before.score), source
            continue
        assert not after.missed_terms and all(match.target in after.text for match in found), (source, after.text)
        assert [m.target for m in after.applied_terms] == [m.target for m in found]


@pytest.mark.parametrize("beam_size", [2, 3, 5, 8])
def test_every_term_is_in_the_output_at_beam_sizes_2_to_8(tiny_tokenizer, beam_size):
    check(translator_for(tiny_tokenizer, "transformer"), beam_size)


@pytest.mark.parametrize("arch, ensemble", [("rnn", False), ("transformer", True), ("rnn", True)])
def test_rnn_models_and_ensembles_meet_the_terms_too(tiny_tokenizer, arch, ensemble):
    check(translator_for(tiny_tokenizer, arch, ensemble), 4)


def test_bf16_weights_meet_the_terms(tiny_tokenizer):
    check(translator_for(tiny_tokenizer, "transformer", precision="bf16"), 4)


def test_int8_quantized_model_meets_the_terms(tiny_tokenizer):
    """Not compared exactly: int8 scales activations per batch, so which sentences are still
    being decoded beside a sentence (and a glossary changes that) moves its scores a little."""
    model, config = tiny_model(tiny_tokenizer, "transformer", seed=0)
    check(Translator(prepare_model(model, "int8", torch.float32, torch.device("cpu")), tiny_tokenizer, config,
                     torch.device("cpu")), 4, exact=False)


def test_beam_size_1_still_meets_the_terms(tiny_tokenizer):
    check(translator_for(tiny_tokenizer, "transformer"), 1)


def test_a_term_the_target_vocabulary_cannot_write_is_reported_missed(tiny_tokenizer):
    translator = translator_for(tiny_tokenizer, "transformer")
    (result,) = translator.translate(["a b c"], DecodeConfig(beam_size=3),
                                     glossary=Glossary.from_pairs([["a b", "Ω"], ["c", "G G"]]))
    assert [m.target for m in result.missed_terms] == ["Ω"] and [m.target for m in result.applied_terms] == ["G G"]


def test_sampling_with_a_glossary_is_refused(tiny_tokenizer):
    from mt.errors import ConfigError

    with pytest.raises(ConfigError, match="glossary needs beam search"):
        list(translator_for(tiny_tokenizer, "transformer").translate(["a b"], DecodeConfig(sampling=True), glossary=GLOSSARY))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: constrained decoding on a GPU is checked where one is")
def test_the_terms_are_met_on_a_cuda_device(tiny_tokenizer):
    model, config = tiny_model(tiny_tokenizer, "transformer", seed=0)
    check(Translator(model.cuda(), tiny_tokenizer, config, torch.device("cuda")), 4)
