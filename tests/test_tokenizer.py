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


def test_separate_vocabularies_and_chinese():
    sources = ["I love you.", "I love cats.", "You love dogs."] * 20
    targets = ["我爱你。", "我爱猫。", "你爱狗。"] * 20
    tokenizer = train_tokenizer(sources, targets, "en", "zh", vocab_size=30, joint=False)
    assert not tokenizer.joint
    assert tokenizer.decode_tgt(tokenizer.encode_tgt(["我爱狗。"])) == ["我爱狗。"]
