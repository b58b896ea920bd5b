import pytest

from mt.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, train_tokenizer


def test_special_ids_are_fixed(tiny_tokenizer):
    pieces = [tiny_tokenizer.src.id_to_piece(i) for i in (PAD_ID, UNK_ID, BOS_ID, EOS_ID)]
    assert pieces == ["<pad>", "<unk>", "<s>", "</s>"]


def test_round_trip_text(tiny_tokenizer):
    text = "a b c d e"
    assert tiny_tokenizer.decode_tgt(tiny_tokenizer.encode_tgt([text.upper()])) == [text.upper()]
    assert tiny_tokenizer.src.decode(tiny_tokenizer.encode_src([text])[0]) == text


def test_save_and_load_give_the_same_ids(tiny_tokenizer, tmp_path):
    tiny_tokenizer.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert loaded.joint and loaded.encode_src(["a b c"]) == tiny_tokenizer.encode_src(["a b c"])


def test_write_encoded_writes_one_line_of_ids_or_pieces_per_sentence(tiny_tokenizer, tmp_path):
    from mt.data import ParallelCorpus

    corpus = ParallelCorpus(["a b c", "d e"], ["A B C", "D E"], "test")
    written = list(tiny_tokenizer.write_encoded(corpus, tmp_path, ids=True))
    langs = tiny_tokenizer.src_lang, tiny_tokenizer.tgt_lang
    assert written == [(tmp_path / f"encoded.{lang}", 2) for lang in langs]
    ids = [list(map(int, line.split())) for line in written[0][0].read_text().splitlines()]
    assert ids == tiny_tokenizer.encode_src(corpus.sources)
    list(tiny_tokenizer.write_encoded(corpus, tmp_path))
    assert written[1][0].read_text().splitlines()[1].split() == tiny_tokenizer.tgt.encode("D E", out_type=str)


def test_separate_vocabularies_and_chinese():
    sources = ["I love you.", "I love cats.", "You love dogs."] * 20
    targets = ["我爱你。", "我爱猫。", "你爱狗。"] * 20
    tokenizer = train_tokenizer(sources, targets, "en", "zh", vocab_size=30, joint=False)
    assert not tokenizer.joint
    assert tokenizer.decode_tgt(tokenizer.encode_tgt(["我爱狗。"])) == ["我爱狗。"]


def test_chinese_targets_keep_full_width_punctuation():
    sources = ["Are you OK?", "Yes, I am!", "Who are you?"] * 20
    targets = ["你还好吗？", "是的，我很好！", "你是谁？"] * 20
    tokenizer = train_tokenizer(sources, targets, "en", "zh", vocab_size=40, joint=False)
    assert tokenizer.decode_tgt(tokenizer.encode_tgt(["你是谁？"])) == ["你是谁？"]
    assert tokenizer.src.decode(tokenizer.encode_src(["Ｗho?"])[0]) == "Who?"  # NFKC on the English side


@pytest.mark.slow
def test_a_corpus_larger_than_the_sample_gives_the_same_pieces_in_every_process():
    import subprocess
    import sys

    code = ("import hashlib, random, mt.tokenizer as t; t.TRAINING_SAMPLE_SENTENCES = 300; rng = random.Random(0); "
            "words = [f'w{i}x{i * 7 % 13}' for i in range(400)]; "
            "lines = [' '.join(rng.choices(words, k=8)) for _ in range(4000)]; "
            "tok = t.train_tokenizer(lines[:2000], lines[2000:], 'en', 'de', vocab_size=200); "
            "print(hashlib.sha256(tok.src.serialized_model_proto()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
               for _ in range(3)}
    assert len(digests) == 1


def test_the_sample_is_uniform_and_whole_when_the_corpus_is_small():
    from mt.tokenizer import _sample
    assert _sample(map(str, range(10)), 20) == [str(i) for i in range(10)]
    picked = _sample(iter(range(100_000)), 10_000)
    assert len(set(picked)) == 10_000
    assert 48_000 < sum(picked) / len(picked) < 52_000  # a uniform sample's mean: 50,000 +- 289 (1 s.d.)
    assert 900 < sum(p >= 90_000 for p in picked) < 1_100  # the stream's last tenth: 1,000 +- 30 expected


def test_sentencepiece_refusals_become_messages_about_mt_options():
    import random

    from mt.errors import DataError

    rng = random.Random(0)
    characters = ["".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(20)) for _ in range(300)]
    with pytest.raises(DataError, match="--vocab-size 100 is too small: the corpus has 2,6.. characters .* raise --vocab-size above") as error:
        train_tokenizer(characters, characters, "en", "zh", vocab_size=100)
    assert "--character_coverage" not in str(error.value)
    with pytest.raises(DataError, match="all 2 are longer than 4,192 bytes"):
        train_tokenizer([" ".join(["abc"] * 250_000)], [" ".join(["xyz"] * 250_000)], "en", "de", vocab_size=50)


def test_an_empty_model_and_a_tokenizer_json_of_wrong_types_are_named(tiny_tokenizer, tmp_path):
    import json

    from mt.errors import CheckpointError

    tiny_tokenizer.save(tmp_path / "tok")
    meta = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    (tmp_path / "tok" / "tokenizer.json").write_text(json.dumps({**meta, "src_lang": 5, "joint": "yes"}))
    with pytest.raises(CheckpointError, match="wrong or missing src_lang, joint"):
        Tokenizer.load(tmp_path / "tok")
    (tmp_path / "tok" / "tokenizer.json").write_text(json.dumps(meta))
    (tmp_path / "tok" / "spm.model").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"spm\.model is an empty SentencePiece model \(0 bytes\)"):
        Tokenizer.load(tmp_path / "tok")
