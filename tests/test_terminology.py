"""Training-time terminology (mt.terminology, Dinu et al. 2019): target terms written into the source."""

import dataclasses
import random

import torch

from mt.alignment import alignment_labels, word_alignment
from mt.config import DataConfig, build_config
from mt.data import CorpusReader
from mt.glossary import Glossary, GlossaryEntry, TermMatch
from mt.models.base import embed_source
from mt.search import greedy_search
from mt.store import cache_root, tokenize_corpus
from mt.terminology import (TERM_START, TermDictionary, annotate, attested_glossary, dictionary_terms, is_annotation,
                            source_pieces, training_terms)
from mt.train import train
from mt.translate import Translator

from conftest import synthetic_sentences, tiny_transformer, write_pair


def test_a_term_is_opened_by_the_marker_and_followed_by_its_target_pieces(tiny_tokenizer):
    sentence = "a bb c, d"
    ids = tiny_tokenizer.encode_src([sentence])[0]
    pieces = tiny_tokenizer.src.encode(sentence, out_type=str)  # ▁a ▁b b ▁c , ▁ d: ',' is unknown to this tokenizer
    matches = Glossary.from_pairs([["bb c", "CC"], ["d", "DA"]]).match(sentence)
    annotated = annotate(tiny_tokenizer, sentence, ids, matches)
    size = tiny_tokenizer.src_vocab_size
    targets = [[size + token for token in term if tiny_tokenizer.tgt.id_to_piece(token) != "▁"]
               for term in tiny_tokenizer.encode_tgt(["CC", "DA"])]
    bb, comma, d = pieces.index("▁b"), pieces.index(","), pieces.index("d")
    assert annotated == ids[:bb] + [TERM_START] + ids[bb:comma] + targets[0] + ids[comma:d] + [TERM_START] + ids[d:] + targets[1]
    shown = source_pieces(tiny_tokenizer, annotated)
    assert [piece for piece in shown if not is_annotation(piece)] == tiny_tokenizer.src.id_to_piece(ids)
    assert shown[bb] == "▁▶" and shown[comma + 1] == f"▁〈{tiny_tokenizer.tgt.id_to_piece(targets[0][0] - size).lstrip('▁')}〉"
    assert annotate(tiny_tokenizer, sentence, ids, []) is ids


def dictionary(*pairs: tuple[str, str]) -> TermDictionary:
    return TermDictionary(GlossaryEntry(source, target, "test") for source, target in pairs)


def test_training_annotates_a_term_the_reference_holds_at_the_rate_drawn_from_the_pair():
    terms = dictionary(("model", "模型"), ("model", "型号"), ("data", "数据"))
    assert training_terms(terms, "the model", "这个模型", 1.0, 0.0) == ([TermMatch(4, 9, "model", "模型")], "这个模型")
    assert training_terms(terms, "the model", "这个型号", 1.0, 0.0) == ([TermMatch(4, 9, "model", "型号")], "这个型号")
    assert training_terms(terms, "the model", "这个东西", 1.0, 0.0) == ([], "这个东西")
    assert training_terms(terms, "the model", "这个模型", 0.0, 1.0) == ([], "这个模型")
    draws = [bool(training_terms(terms, f"model {i}", "模型", 0.3, 0.0)[0]) for i in range(2000)]
    assert 0.25 < sum(draws) / len(draws) < 0.35
    assert draws == [bool(training_terms(terms, f"model {i}", "模型", 0.3, 0.0)[0]) for i in range(2000)]  # every run alike


def test_a_substituted_term_changes_the_annotation_and_the_target_alike():
    terms = dictionary(("model", "模型"), ("model", "型号"), ("data", "数据"))
    found, trained = training_terms(terms, "the model and its data", "这个模型和它的数据", 1.0, 1.0)
    assert found == [TermMatch(4, 9, "model", "型号"), TermMatch(18, 22, "data", "数据")]  # 数据 has no other target
    assert trained == "这个型号和它的数据"
    swapped = sum(training_terms(terms, f"model {i}", "模型", 1.0, 0.5)[1] == "型号" for i in range(1000))
    assert 400 < swapped < 600


def test_the_dev_glossary_keeps_dictionary_terms_seen_on_both_sides_with_their_most_frequent_target(tmp_path):
    path = tmp_path / "dict.tsv"
    path.write_text("machine\t机器\nmachine\t机械\nlearn\t学习\nshared library\t共享库\nok\t好的\n", encoding="utf-8")
    pairs = [("the machine", "这台机器"), ("a machine", "机械"), ("machine", "机器"), ("learn it", "不知道"),
             ("a shared library", "共享库"), ("ok", "好的")]
    glossary = attested_glossary(path, pairs)
    assert {entry.source: entry.target for entry in glossary.entries.values()} == {"machine": "机器", "shared library": "共享库"}
    assert dictionary_terms(path) == {("machine",): {"机器", "机械"}, ("learn",): {"学习"}, ("shared", "library"): {"共享库"}}


def test_shifted_source_ids_are_embedded_as_target_pieces():
    model = tiny_transformer(tie=False)
    model.tgt_embedding.weight.data.normal_()
    src = torch.tensor([[5, 30 + 7, 30 + 2, 6]])  # V_src = 30: 37 is target piece 7
    embedded = embed_source(src, model.src_embedding, model.tgt_embedding)
    assert torch.equal(embedded[0, 1], model.tgt_embedding.weight[7]) and torch.equal(embedded[0, 2], model.tgt_embedding.weight[2])
    assert torch.equal(embedded[0, 0], model.src_embedding.weight[5])


def test_a_corpus_tokenized_with_terminology_is_annotated_and_cached_apart(tmp_path, tiny_tokenizer):
    sources = synthetic_sentences(50, seed=3)
    prefix = write_pair(tmp_path, "train", sources, [s.upper() for s in sources])
    terms = dictionary(("a", "A"), ("a", "B"))
    plain = tokenize_corpus(CorpusReader(prefix, "en", "de"), tiny_tokenizer, DataConfig(train=prefix))
    data = DataConfig(train=prefix, terminology_rate=1.0, terminology_substitute=0.5)
    annotated = tokenize_corpus(CorpusReader(prefix, "en", "de"), tiny_tokenizer, data, terms)
    rows = range(len(plain))
    for source, plain_ids, (src_ids, tgt_ids) in zip(sources, plain.rows(rows)[0], zip(*annotated.rows(rows))):
        found, trained = training_terms(terms, source, source.upper(), 1.0, 0.5)
        assert src_ids == annotate(tiny_tokenizer, source, plain_ids, found)
        assert tgt_ids == tiny_tokenizer.encode_tgt([trained])[0]
        assert (src_ids != plain_ids) == ("a" in source.split())
    assert len(list((cache_root(DataConfig()) / "corpora").iterdir())) == 2


def test_a_terminology_checkpoint_annotates_its_glossary_terms_and_views_tell_them_apart(tiny_checkpoint, tmp_path):
    translator = Translator.from_checkpoint(tiny_checkpoint, device="cpu")
    glossary = Glossary.from_pairs([["b", "BB"]])
    plain = next(translator.translate(["a b c"], return_attention=True, glossary=glossary))
    translator.config = dataclasses.replace(translator.config, data=dataclasses.replace(translator.config.data, terminology="terms.tsv"))
    annotated = next(translator.translate(["a b c"], return_attention=True, glossary=glossary))
    assert not any(is_annotation(piece) for piece in plain.src_pieces)
    assert [piece for piece in annotated.src_pieces if not is_annotation(piece)] == plain.src_pieces
    assert any(is_annotation(piece) for piece in annotated.src_pieces) and "BB" in annotated.text
    _, _, columns = alignment_labels(annotated, "word")
    assert any(is_annotation(label) for label in columns)
    assert all(source < 3 for source, _ in word_alignment(annotated))  # a, b, c: the annotation is no source word
    unmatched = next(translator.translate(["a c"], glossary=glossary))
    assert unmatched.src_pieces == next(translator.translate(["a c"])).src_pieces


def test_mt_train_with_a_malformed_terminology_glossary_exits_2_naming_file_and_line(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    bad = tmp_path / "terms.tsv"
    bad.write_text("a\tA\nb\n", encoding="utf-8")
    sources = synthetic_sentences(40, seed=1)
    corpus, dev = write_pair(tmp_path, "train", sources, sources), write_pair(tmp_path, "dev", sources[:5], sources[:5])
    common = ["train", "--train", corpus, "--dev", dev, "--src", "en", "--tgt", "de", "--vocab-size", "30", "--max-steps", "1",
              "--output", str(tmp_path / "run"), "--terminology", str(bad)]
    result = CliRunner().invoke(app, common)
    assert result.exit_code == 2 and "terms.tsv, line 2: expected 2 tab-separated columns" in result.output
    result = CliRunner().invoke(app, common + ["--terminology-rate", "1.5"])
    assert result.exit_code == 2 and "terminology_rate must be between 0 and 1" in result.output


def test_a_model_trained_with_annotations_writes_the_annotated_term(tmp_path):
    """The word "t" becomes K, L or M at random; only K is in the glossary, so training annotates
    exactly the pairs with K. The model can tell which to write only from the annotation."""
    rng = random.Random(0)
    sources, targets = [], []
    for sentence in synthetic_sentences(1500, seed=4, max_length=6):
        words = sentence.split()
        words.insert(rng.randrange(len(words) + 1), "t")
        sources.append(" ".join(words))
        targets.append(" ".join(rng.choice("KLM") if word == "t" else word.upper() for word in words))
    glossary = tmp_path / "terms.tsv"
    glossary.write_text("t\tK\n", encoding="utf-8")
    config = build_config(None, None, {
        "data": {"train": write_pair(tmp_path, "train", sources, targets), "dev": write_pair(tmp_path, "dev", sources[:20], targets[:20]),
                 "vocab_size": 32, "model_type": "bpe", "terminology": str(glossary), "terminology_rate": 1.0,
                 "terminology_substitute": 0.0},
        "model": {"d_model": 64, "ff_dim": 128, "heads": 4, "encoder_layers": 2, "decoder_layers": 2, "dropout": 0.0},
        "train": {"max_steps": 400, "batch_tokens": 600, "learning_rate": 0.003, "warmup_steps": 50, "validate_every": 1000,
                  "precision": "fp32", "threads": 1}})
    train(config, tmp_path / "run")
    translator = Translator.from_checkpoint(tmp_path / "run", device="cpu")
    tokenizer, tests = translator.tokenizer, synthetic_sentences(30, seed=9, max_length=5)
    tests = [f"{sentence} t" for sentence in tests]
    match = [Glossary.from_pairs([["t", "K"]]).match(sentence) for sentence in tests]
    greedy = dataclasses.replace(translator.config.decode, beam_size=1)

    def outputs(annotated: bool) -> list[str]:
        ids = [annotate(tokenizer, s, i, m) if annotated else i for s, i, m in zip(tests, tokenizer.encode_src(tests), match)]
        width = max(map(len, ids)) + 1
        src = torch.tensor([i + [3] + [0] * (width - len(i) - 1) for i in ids])
        hypotheses = greedy_search(translator.model, src, src != 0, greedy)
        return tokenizer.decode_tgt([h[0].tokens for h in hypotheses])

    with_k = sum("K" in text.split() for text in outputs(True))
    without_k = sum("K" in text.split() for text in outputs(False))
    assert with_k >= 27 and without_k <= 3, (with_k, without_k)
