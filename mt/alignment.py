"""Attention between words instead of SentencePiece pieces, and word alignments read off it.

A model attends from target pieces to source pieces; a reader thinks in words ("generating 我
looks at I"). ``alignment_labels(translation, level="word")`` merges the pieces of every word:

    word attention[t, s] = mean over the pieces p of target word t of  sum over the pieces q of
                           source word s of  piece attention[p, q]

Summing over a source word's pieces keeps what the pieces received together; averaging over a
target word's pieces keeps each row a distribution: every row still sums to 1.

Words: a piece that starts with SentencePiece's word-start marker "▁" starts a word, so a
language written with spaces gets its whitespace-separated words, with the punctuation that
ends a word split off ("learning." -> "learning", "."), as a tokenizer for word aligners does.
Chinese, Japanese and Thai are written without spaces, so a whole Chinese sentence is one "▁"
word; there every piece is a word of its own (``UNSPACED_SCRIPTS``). Pieces are never split: a
piece is one row of attention. On 1,046 Chinese sentences of the shipped model's dev set
(tatoeba-en-zh dev.tsv) a segmenter would not do better: only 64% of jieba 0.42's 6,843 words are whole
pieces (·我喜欢 is one piece, jieba's 我 | 喜欢), so its words could not be drawn; the pieces give
6,273 words, 2,558 of them of two characters or more (机器, 学习).

``word_alignment`` reads a hard alignment off the word attention, as fairseq's
``--print-alignment`` does: every target word is linked to the source word it attends to most
(heads averaged, one decoder layer, EOS left out). ``pharaoh`` writes the links as "0-0 1-1 ...".
Attention is not alignment: it says where the decoder read from, which is often the word it
translates but can be a neighbour, punctuation or EOS (docs/attention.md).
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Sequence

import torch

from mt.errors import ConfigError, DataError
from mt.terminology import is_annotation

if TYPE_CHECKING:
    from mt.translate import Translation

WORD_MARKER = "▁"  # SentencePiece: "a new word starts here"
WORD_MARKER_SHOWN = "·"
EOS_LABEL = "</s>"
LEVELS = ("word", "piece")
# Code point ranges of scripts written without spaces between words: Thai and Lao, Myanmar, Khmer,
# CJK radicals to unified ideographs (with CJK punctuation, kana and bopomofo), compatibility
# ideographs, full-width forms, and the CJK extensions beyond the basic plane.
UNSPACED_SCRIPTS = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x2E80, 0x9FFF), (0xF900, 0xFAFF),
                    (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))


def _unspaced(character: str) -> bool:
    return bool(character) and any(start <= ord(character) <= end for start, end in UNSPACED_SCRIPTS)


def _punctuation(text: str) -> bool:
    return bool(text) and all(unicodedata.category(character).startswith("P") for character in text)


def word_index(pieces: Sequence[str]) -> list[int]:
    """The word (0, 1, ...) each of ``pieces`` belongs to. A piece starts a word when it starts with
    "▁"; when it or the piece before it is in a script written without spaces; or when it is
    punctuation that ends a word ("learning" "." -> two words, "don" "'" "t" -> one). A piece that
    is only "▁" starts the word of the piece after it."""
    index: list[int] = []
    for position, piece in enumerate(pieces):
        previous = pieces[position - 1] if position else WORD_MARKER
        text, ends_word = piece.lstrip(WORD_MARKER), position + 1 == len(pieces) or pieces[position + 1].startswith(WORD_MARKER)
        starts = previous != WORD_MARKER and (
            piece.startswith(WORD_MARKER) or _unspaced(text[:1]) or _unspaced(previous[-1:]) or (ends_word and _punctuation(text)))
        index.append(index[-1] + starts if index else 0)
    return index


def words(pieces: Sequence[str]) -> list[str]:
    """The words of ``pieces`` (``word_index``), each its pieces joined without the "▁" markers."""
    joined: list[str] = []
    for word, piece in zip(word_index(pieces), pieces):
        text = piece.replace(WORD_MARKER, "")
        if word == len(joined):
            joined.append(text)
        else:
            joined[word] += text
    return joined


def merge_pieces(attention: torch.Tensor, row_words: Sequence[int], col_words: Sequence[int]) -> torch.Tensor:
    """Piece attention (T, ..., S) -> word attention (T', ..., S'): the columns of a source word's
    pieces summed, the rows of a target word's pieces averaged. ``row_words`` (T) and ``col_words``
    (S) give each piece's word, 0..T'-1 and 0..S'-1 in order (``word_index``). A row that sums to
    1 over the pieces sums to 1 over the words."""
    rows = torch.as_tensor(row_words, device=attention.device)
    columns = torch.as_tensor(col_words, device=attention.device)
    weights = attention.float()
    summed = weights.new_zeros(*weights.shape[:-1], int(columns[-1]) + 1).index_add_(-1, columns, weights)
    merged = summed.new_zeros(int(rows[-1]) + 1, *summed.shape[1:]).index_add_(0, rows, summed)
    counts = torch.bincount(rows).to(merged.dtype)
    return merged / counts.view(-1, *[1] * (merged.dim() - 1))


def display_piece(piece: str) -> str:
    """A SentencePiece piece as plots and tables show it: the word-start marker "▁" drawn as "·"."""
    return piece.replace(WORD_MARKER, WORD_MARKER_SHOWN)


def alignment_labels(translation: Translation, level: str = "word") -> tuple[torch.Tensor, list[str], list[str]]:
    """The attention of ``translation`` between its words (``level="word"``) or pieces
    (``level="piece"``), with a label for every row and column.

    Returns ``(attention, row_labels, col_labels)``: attention (T, L, H, S) where the T rows are
    the target words or pieces plus EOS (a hypothesis cut at the length limit has no EOS row) and
    the S columns the source words or pieces plus EOS, without the padding columns of the batch it
    was translated in. Word labels are the words (``words``); piece labels the pieces as
    ``display_piece`` shows them; EOS is "</s>". Raises ``DataError`` if the translation has no
    attention (an empty input, or ``translate`` was not asked for it), ``ConfigError`` for
    another level.
    """
    if level not in LEVELS:
        raise ConfigError(f"unknown attention level {level!r}: use {' or '.join(LEVELS)}")
    attention = translation.attention
    if attention is None:
        raise DataError(f"no attention for {translation.source!r}: the input was empty, "
                        "or it was translated without return_attention=True")
    targets, columns = len(translation.tgt_pieces), len(translation.src_pieces) + 1
    if attention.dim() != 4 or attention.size(0) not in (targets, targets + 1) or attention.size(-1) < columns:
        raise ValueError(f"attention of shape {tuple(attention.shape)} does not fit "
                         f"{targets} target and {columns - 1} source pieces")
    eos_rows = attention.size(0) - targets
    attention = attention[..., :columns]
    if level == "piece":
        return (attention, [display_piece(piece) for piece in translation.tgt_pieces] + [EOS_LABEL] * eos_rows,
                [display_piece(piece) for piece in translation.src_pieces] + [EOS_LABEL])
    row_words, col_words = word_index(translation.tgt_pieces), word_index(translation.src_pieces)
    rows = row_words + [row_words[-1] + 1 if row_words else 0] * eos_rows
    merged = merge_pieces(attention, rows, col_words + [col_words[-1] + 1])
    return (merged, words(translation.tgt_pieces) + [EOS_LABEL] * eos_rows,
            words(translation.src_pieces) + [EOS_LABEL])


def select_attention(attention: torch.Tensor, layer: int | None = None, head: int | str | None = None) -> torch.Tensor:
    """One layer's attention, heads averaged or not, from the decoder's ``attention`` (T, L, H, S).

    ``layer`` indexes the decoder layers (default: the last; negative counts from the end).
    ``head``: None averages that layer's heads -> (T, S); an int picks one head -> (T, S);
    "all" keeps every head -> (H, T, S). Returns float32. Raises ``ConfigError`` for a layer or
    head the model does not have.
    """
    if attention.dim() != 4:
        raise ValueError(f"attention must be (T, L, H, S), got shape {tuple(attention.shape)}")
    layers, heads = attention.size(1), attention.size(2)
    layer = -1 if layer is None else layer
    if not -layers <= layer < layers:
        raise ConfigError(f"there is no layer {layer}: the decoder has {layers} layer(s), "
                          f"0..{layers - 1} (or -1..-{layers} counting back from the last)")
    weights = attention[:, layer].float()  # (T, H, S)
    if head is None:
        return weights.mean(dim=1)
    if head == "all":
        return weights.transpose(0, 1)
    if not isinstance(head, int) or not -heads <= head < heads:
        raise ConfigError(f"there is no head {head!r}: each layer has {heads} head(s), 0..{heads - 1} "
                          f"(or -1..-{heads} counting back from the last), or 'all'")
    return weights[:, head]


def word_alignment(translation: Translation, layer: int | None = None) -> list[tuple[int, int]]:
    """Word alignment links (source word, target word) of ``translation``: each target word to
    the source word it attends to most in decoder ``layer`` (default: the last, which aligned best
    on the shipped en->zh Transformer: 37 of 43 hand-aligned target words right, against 36 and 34
    for layers 1 and 0; ``scripts/alignment_layers.py``), heads averaged; EOS on either side is
    left out, and so are the target terms a glossary wrote into the source (``mt.terminology``).
    Indices count the words of ``alignment_labels(translation, "word")`` the user wrote. Raises
    what ``alignment_labels`` and ``select_attention`` raise."""
    attention, _, col_labels = alignment_labels(translation, "word")
    matrix = select_attention(attention, layer)[: len(words(translation.tgt_pieces)), : len(col_labels) - 1]  # (T', S')
    written = [column for column, label in enumerate(col_labels[:-1]) if not is_annotation(label)]
    matrix = matrix[:, written]  # the words the user wrote, not a glossary's annotations (mt.terminology)
    return [(int(source), target) for target, source in enumerate(matrix.argmax(dim=-1).tolist())]


def pharaoh(links: Sequence[tuple[int, int]]) -> str:
    """Links (source, target) in Pharaoh format, as fast_align and Moses read it: "0-0 1-1 2-3"."""
    return " ".join(f"{source}-{target}" for source, target in links)
