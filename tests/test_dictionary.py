"""CC-CEDICT lines -> English->Chinese pairs: what is a translation and what is not (mt.dictionary)."""

from mt.dictionary import ContextReport, Pair, Report, dictionary_pairs, terms_in_context

LINES = """# CC-CEDICT
#! version=1
神經網絡 神经网络 [shen2 jing1 wang3 luo4] /neural network/
深度學習 深度学习 [shen1 du4 xue2 xi2] /deep learning (artificial intelligence)/
愛 爱 [ai4] /to love; to be fond of; to like/affection/to be inclined (to do sth); to tend to (happen)/
機器 机器 [ji1 qi4] /machine/CL:臺|台[tai2],部[bu4],個|个[ge4]/
拜拜 拜拜 [bai2 bai2] /(loanword) bye-bye/
王 王 [Wang2] /surname Wang/
着 着 [zhe5] /variant of 著[zhe5]/
88 88 [ba1 ba1] /(Internet slang) bye-bye (alternative for 拜拜[bai2 bai2])/
長篇 长篇 [chang2 pian1] /lengthy (report or speech) that goes on and on for ever/
嗯 嗯 [ng4] /(expressing agreement)/
""".splitlines()


def test_translations_are_kept_and_the_rest_counted_by_reason():
    report = Report()
    pairs = list(dictionary_pairs(LINES, max_words=4, per_entry=2, report=report))
    assert [pair.verb for pair in pairs] == [False, False, True, True, False, False]
    assert [(pair.english, pair.chinese) for pair in pairs] == [("neural network", "神经网络"), ("deep learning", "深度学习"), ("love", "爱"), ("be fond of", "爱"),
                     ("machine", "机器"), ("bye-bye", "拜拜")]
    assert (report.entries, report.entries_kept, report.glosses_kept) == (10, 5, 6)
    assert report.entries_dropped == {"headword not all Chinese characters": 1, "no gloss is a translation": 4}
    assert report.glosses_dropped == {"over the per-entry limit": 4, "measure word (CL:)": 1, "surname": 1,
                                      "cross-reference (see / variant of / abbr. for ...)": 1, "longer than 4 words": 1,
                                      "only a note in parentheses": 1}


def test_per_entry_and_word_limits_and_duplicates():
    pairs = list(dictionary_pairs(LINES[4:5] + LINES[4:5], max_words=2, per_entry=5))
    assert [(pair.english, pair.chinese) for pair in pairs] == [("love", "爱"), ("like", "爱"), ("affection", "爱"), ("be inclined", "爱"), ("tend to", "爱")]


def test_terms_go_into_sentences_in_place_of_a_noun_after_a_determiner():
    pairs = [Pair("music", "音乐", False), Pair("book", "书", False), Pair("neural network", "神经网络", False),
             Pair("deep learning", "深度学习", False), Pair("study hard", "刻苦学习", True), Pair("C++", "西佳佳", False)]
    sentences = [("I love the music.", "我爱这音乐。"),  # a frame: "the music" / 音乐
                 ("Music is life.", "音乐是生命。"),  # no determiner before it
                 ("My book is here.", "我的书在这里。"),  # 书 has one character: too short to find safely
                 ("The music, the music!", "音乐，音乐！")]  # twice
    report = ContextReport()
    made = list(terms_in_context(pairs, sentences, per_term=2, seed=0, report=report))
    assert sorted(made) == [("I love the deep learning.", "我爱这深度学习。"), ("I love the neural network.", "我爱这神经网络。")]
    assert (report.sentences, report.frames, report.terms, report.pairs) == (4, 1, 2, 2)
    capitalised = list(terms_in_context(pairs, [("The Music of Tom.", "汤姆的音乐。")], per_term=1))
    assert capitalised[0][0] == "The Deep learning of Tom." or capitalised[0][0] == "The Neural network of Tom."
