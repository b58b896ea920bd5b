"""Subword tokenization with SentencePiece (Kudo & Richardson, 2018).

One model shared by source and target (a joint vocabulary, which lets the Transformer tie its
embeddings) or one model per side. Special ids are fixed for every model: PAD=0, UNK=1, BOS=2,
EOS=3. A tokenizer directory holds ``tokenizer.json`` and ``spm.model`` (joint) or
``src.model`` + ``tgt.model`` (separate).
"""

from __future__ import annotations

import io
import itertools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import sentencepiece as spm

from mt.data import ParallelCorpus, is_cjk
from mt.errors import CheckpointError, DataError
from mt.files import atomic_output

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
TOKENIZER_FILE = "tokenizer.json"
JOINT_MODEL_FILE, SRC_MODEL_FILE, TGT_MODEL_FILE = "spm.model", "src.model", "tgt.model"
# SentencePiece trains on a uniform sample of at most this many sentences (both sides of a joint
# model together): its trainer holds them in memory at about 1.4 KB each (measured: 500k
# sentences 0.8 GB peak, 2M 2.8 GB), and 500k sentences are plenty for a vocabulary of 8k-32k.
TRAINING_SAMPLE_SENTENCES = 500_000
# SentencePiece's trainer skips longer sentences (its max_sentence_length, in bytes); we leave them
# out of its sample ourselves, so that a corpus of nothing else gets our message, not its assertion.
MAX_TRAINING_SENTENCE_BYTES = 4192


def _sample(sentences: Iterable[str], size: int) -> list[str]:
    """A uniform sample of ``size`` sentences from a stream of unknown length, the same one every
    time (reservoir sampling, Vitter 1985, algorithm R, seeded). SentencePiece's own sampling
    (``input_sentence_size``) draws a different sample in every process, hence different pieces."""
    rng = random.Random(0)
    reservoir: list[str] = []
    for seen, sentence in enumerate(sentences):
        if seen < size:
            reservoir.append(sentence)
        elif (slot := rng.randrange(seen + 1)) < size:
            reservoir[slot] = sentence
    return reservoir


def _train_model(sentences: Iterable[str], vocab_size: int, model_type: str, character_coverage: float,
                 normalization: str) -> bytes:
    """A SentencePiece model proto trained on ``sentences``; ``DataError`` with what to change when
    SentencePiece refuses (no sentence short enough, a vocabulary smaller than the alphabet)."""
    model = io.BytesIO()
    too_long = 0

    def short(stream: Iterable[str]) -> Iterable[str]:
        nonlocal too_long
        for sentence in stream:
            if len(sentence.encode("utf-8")) <= MAX_TRAINING_SENTENCE_BYTES:
                yield sentence
            else:
                too_long += 1

    sample = _sample(short(sentences), TRAINING_SAMPLE_SENTENCES)
    if not sample:
        raise DataError(f"no sentence to train the tokenizer on: all {too_long:,} are longer than "
                        f"{MAX_TRAINING_SENTENCE_BYTES:,} bytes (SentencePiece's limit); is it one sentence per line?")
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sample),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            normalization_rule_name=normalization,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary, not an error
            num_threads=2, minloglevel=2,
        )
    except RuntimeError as error:
        if counts := re.search(r"smaller than required_chars\. (\d+) vs (\d+)", str(error)):
            raise DataError(f"--vocab-size {vocab_size} is too small: the corpus has {int(counts.group(2)):,} characters "
                            f"that need a piece each (with the special pieces): raise --vocab-size above {counts.group(2)}") from None
        raise DataError(f"SentencePiece training failed: {error}") from None
    return model.getvalue()


@dataclass
class Tokenizer:
    """Source and target SentencePiece processors (the same object when the vocabulary is joint)."""

    src: spm.SentencePieceProcessor
    tgt: spm.SentencePieceProcessor
    src_lang: str
    tgt_lang: str
    joint: bool

    @property
    def src_vocab_size(self) -> int:
        return self.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.get_piece_size()

    def encode_src(self, sentences: Sequence[str]) -> list[list[int]]:
        """Sentences -> subword ids (no BOS/EOS; the batcher adds EOS)."""
        return self.src.encode(list(sentences), out_type=int)

    def encode_tgt(self, sentences: Sequence[str]) -> list[list[int]]:
        """Target sentences -> subword ids (no BOS/EOS; the batcher adds them)."""
        return self.tgt.encode(list(sentences), out_type=int)

    def src_pieces(self, sentence: str) -> list[str]:
        """A source sentence as SentencePiece pieces (for display)."""
        return self.src.encode(sentence, out_type=str)

    def tgt_pieces(self, ids: Sequence[int]) -> list[str]:
        """Target ids as pieces (for display)."""
        return [self.tgt.id_to_piece(i) for i in ids]

    def decode_tgt(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Target ids -> detokenized text (CJK without spaces, as SentencePiece learned it)."""
        return self.tgt.decode([list(i) for i in ids])

    def same_as(self, other: "Tokenizer") -> bool:
        """Whether ``other`` turns text into the same ids on both sides (the same SentencePiece models)."""
        return (self.src.serialized_model_proto() == other.src.serialized_model_proto()
                and self.tgt.serialized_model_proto() == other.tgt.serialized_model_proto())

    def write_encoded(self, corpus: ParallelCorpus, directory: Path, ids: bool = False,
                      inputs: Sequence[Path] = ()) -> Iterator[tuple[Path, int]]:
        """Encode ``corpus`` into ``directory``/encoded.{src_lang,tgt_lang}: a sentence a line, its
        pieces (or ``ids``) separated by spaces, each file written whole and never over one of
        ``inputs`` (``mt.files.atomic_output``). Yields each file once written, with its sentences."""
        for lang, sentences, processor in ((self.src_lang, corpus.sources, self.src), (self.tgt_lang, corpus.targets, self.tgt)):
            encoded = processor.encode(sentences, out_type=int if ids else str)
            path = Path(directory) / f"encoded.{lang}"
            with atomic_output(path, inputs) as handle:
                handle.write("".join(" ".join(map(str, row)) + "\n" for row in encoded))
            yield path, len(encoded)

    def save(self, directory: Path) -> None:
        """Write the model file(s) and ``tokenizer.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = ({"src": JOINT_MODEL_FILE, "tgt": JOINT_MODEL_FILE} if self.joint
                 else {"src": SRC_MODEL_FILE, "tgt": TGT_MODEL_FILE})
        for side, name in names.items():
            (directory / name).write_bytes(getattr(self, side).serialized_model_proto())
        meta = {"src_lang": self.src_lang, "tgt_lang": self.tgt_lang, "joint": self.joint, "models": names}
        (directory / TOKENIZER_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "Tokenizer":
        """Load a tokenizer directory; ``CheckpointError`` if files are missing, empty or
        unreadable, or ``tokenizer.json`` has a field of the wrong type."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / TOKENIZER_FILE).read_text(encoding="utf-8"))
            _check_meta(meta, directory / TOKENIZER_FILE)
            processors = {}
            for side in ("src", "tgt"):
                name = meta["models"][side]
                if Path(name).name != name:  # only files inside the directory, never a path elsewhere
                    raise CheckpointError(f"{directory / TOKENIZER_FILE} names a model outside its directory: {name!r}")
                proto = (directory / name).read_bytes()
                processors[side] = spm.SentencePieceProcessor(model_proto=proto) if proto else None
                if processors[side] is None or processors[side].get_piece_size() == 0:
                    raise CheckpointError(f"{directory / name} is an empty SentencePiece model ({len(proto)} bytes): the "
                                          "file was truncated; copy it again from the run that trained the model")
            return cls(processors["src"], processors["tgt"], meta["src_lang"], meta["tgt_lang"], meta["joint"])
        except FileNotFoundError as error:
            raise CheckpointError(f"tokenizer in {directory} is incomplete: {error.filename} is missing") from None
        except (json.JSONDecodeError, KeyError, TypeError, RuntimeError) as error:
            raise CheckpointError(f"tokenizer in {directory} is unreadable: {error!r}") from None


def _check_meta(meta: object, path: Path) -> None:
    """``CheckpointError`` unless ``tokenizer.json`` holds the fields ``Tokenizer.save`` writes, with their types."""
    expected = {"src_lang": str, "tgt_lang": str, "joint": bool, "models": dict}
    wrong = [key for key, kind in expected.items() if not isinstance(meta, dict) or not isinstance(meta.get(key), kind)]
    if not wrong and not all(isinstance(meta["models"].get(side), str) for side in ("src", "tgt")):
        wrong = ["models"]
    if wrong:
        got = {key: meta.get(key) for key in wrong} if isinstance(meta, dict) else meta
        raise CheckpointError(f"{path}: wrong or missing {', '.join(wrong)} (got {got!r}); expected src_lang and tgt_lang "
                              "strings, joint true/false, models {\"src\": FILE, \"tgt\": FILE}")


def train_tokenizer(
    sources: Iterable[str],
    targets: Iterable[str],
    src_lang: str,
    tgt_lang: str,
    vocab_size: int = 8000,
    model_type: str = "unigram",
    joint: bool = True,
) -> Tokenizer:
    """Train SentencePiece on a corpus' sentences (lists, or generators streaming a large corpus).

    Character coverage is 0.9995 for a CJK side (so rare characters become UNK rather than
    bloating the vocabulary) and 1.0 otherwise; a joint model uses 0.9995 if either side is CJK.
    Text is NFKC-normalized (SentencePiece's ``nmt_nfkc``), except a CJK *target*, which keeps
    its characters as written (``identity``): NFKC would turn the full-width punctuation of
    Chinese references (？，！) into ASCII in every translation. ``vocab_size`` is an upper bound:
    small corpora get fewer pieces.
    """
    def coverage(*langs: str) -> float:
        return 0.9995 if any(is_cjk(lang) for lang in langs) else 1.0

    target_rule = "identity" if is_cjk(tgt_lang) else "nmt_nfkc"
    if joint:
        proto = _train_model(itertools.chain(sources, targets), vocab_size, model_type, coverage(src_lang, tgt_lang), target_rule)
        processor = spm.SentencePieceProcessor(model_proto=proto)
        return Tokenizer(processor, processor, src_lang, tgt_lang, joint=True)
    src = spm.SentencePieceProcessor(model_proto=_train_model(sources, vocab_size, model_type, coverage(src_lang), "nmt_nfkc"))
    tgt = spm.SentencePieceProcessor(model_proto=_train_model(targets, vocab_size, model_type, coverage(tgt_lang), target_rule))
    return Tokenizer(src, tgt, src_lang, tgt_lang, joint=False)
