import sacrebleu

from mt.metrics import bleu, corpus_scores, default_tokenize

HYPOTHESES = ["The cat sat on the mat.", "A dog runs in the park.", "Hello world"]
REFERENCES = ["The cat is on the mat.", "A dog is running in the park.", "Hello, world!"]


def test_bleu_equals_sacrebleu():
    ours = bleu(HYPOTHESES, REFERENCES)
    theirs = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    assert ours.score == theirs.score and "tok:13a" in ours.signature


def test_all_scores_have_signatures_and_chinese_uses_zh():
    names = [score.name for score in corpus_scores(HYPOTHESES, REFERENCES)]
    assert names == ["BLEU", "chrF", "TER"]
    assert default_tokenize("zh") == "zh" and default_tokenize("ja") == "ja-mecab" and default_tokenize("de") == "13a"
    chinese = bleu(["我爱机器学习。"], ["我爱机器学习。"], tokenize="zh")
    assert abs(chinese.score - 100.0) < 1e-9 and "tok:zh" in chinese.signature


def test_lowercase_is_in_the_signature():
    score = bleu(["the cat sat on the mat"], ["The Cat sat on the Mat"], lowercase=True)
    assert abs(score.score - 100.0) < 1e-9 and "case:lc" in score.signature


def test_lc_tok_bleu_follows_the_multi30k_pipeline():
    from mt.metrics import lc_tok_bleu, moses_lowercase_tokenize

    assert moses_lowercase_tokenize(['Ein Mann sagt "Hallo", oder?'], "de") == ["ein mann sagt &quot; hallo &quot; , oder ?"]
    reference = "ein hund läuft &quot; schnell &quot; über das gras ."
    score = lc_tok_bleu(['Ein Hund läuft "schnell" über das Gras.'], [reference], "de")
    assert abs(score.score - 100.0) < 1e-9 and score.name == "lc+tok BLEU" and "sacremoses" in score.signature
