"""The Chinese guide and the English docs name the same attention mechanisms and presets."""

import re
from pathlib import Path

from mt.config import available_presets
from mt.models.rnn import ATTENTIONS

DOCS = Path(__file__).resolve().parents[1] / "docs"
ENGLISH = [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]
CHINESE = DOCS / "zh" / "README.md"


def named(text: str) -> set[str]:
    """The registered attention names and presets that ``text`` names, each as a whole name
    (``rnn-luong`` is not named by ``rnn-luong-local``)."""
    return {name for name in [*ATTENTIONS, *available_presets()]
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)}


def test_the_chinese_guide_and_the_english_docs_name_the_same_mechanisms_and_presets():
    english = named("\n".join(path.read_text(encoding="utf-8") for path in ENGLISH))
    chinese = named(CHINESE.read_text(encoding="utf-8"))
    assert not english - chinese, f"named in the English docs, missing from {CHINESE.name} (zh): {sorted(english - chinese)}"
    assert not chinese - english, f"named in the Chinese guide, missing from the English docs: {sorted(chinese - english)}"
    assert english, "the docs name no mechanism at all: the pattern is broken"


def test_a_name_counts_only_whole():
    assert named("scripts/train_rnn.sh rnn-luong-local multi30k") == {"rnn-luong-local"}
    assert named("--attention luong-local-m") == {"luong-local-m"}
