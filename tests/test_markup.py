"""HTML to translate (mt.markup): text nodes out, the same markup back around their translations."""

import pytest

from mt.markup import split_html

PAGE = ('<!DOCTYPE html>\n<html><head><style>p { color: red }</style><script>var tag = "<b>x</b>";</script></head>\n'
        '<body>\n  <p class="lead" data-x=\'1\' title="Keep me">Hello <B  CLASS=y>big</B > world &amp; you</p>'
        '<!-- a comment --><br/>\n  a &lt; b<img src="x.png" alt="not translated"></body></html>')


def test_only_text_nodes_are_taken_entities_decoded_and_script_style_and_attributes_left_out():
    assert split_html(PAGE).texts == ["Hello", "big", "world & you", "a < b"]


def test_filling_changes_the_text_nodes_and_keeps_every_other_character_as_written():
    fragment = split_html(PAGE)
    filled = fragment.fill(["HELLO", "BIG", "WORLD & YOU", "A < B"])
    assert filled == PAGE.replace("Hello", "HELLO").replace(">big<", ">BIG<").replace(
        "world &amp; you", "WORLD &amp; YOU").replace("a &lt; b", "A &lt; B")
    assert fragment.fill(["<script>alert(1)</script>"] * 4).count("<script>") == 1  # translations are text, never markup


@pytest.mark.parametrize("text", ["", "plain text, no markup", "<br>", "<p>unclosed <b>tags", "a <not a tag"])
def test_any_input_round_trips(text):
    fragment = split_html(text)
    assert fragment.fill(fragment.texts).replace("&lt;", "<") == text
    with pytest.raises(ValueError, match="text nodes but"):
        fragment.fill(fragment.texts + ["one too many"])
