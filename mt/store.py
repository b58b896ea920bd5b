"""Tokenized corpora on disk: Arrow files read through ``datasets``, memory-mapped, cached by content.

Training data flows ``CorpusReader`` (streamed text pairs) -> ``Tokenizer`` -> an Arrow file of
subword ids -> ``TokenizedCorpus`` (memory-mapped) -> token batches. Pairs are encoded and
written in chunks of ``CHUNK_PAIRS``, so preparing a corpus of millions of pairs never holds it
as Python lists, and the file is opened memory-mapped, so the operating system pages in only the
rows a batch reads.

Both the tokenizer trained on a corpus and the tokenized corpus are cached under the cache
directory (``data.cache_dir``, else ``$MT_CACHE``, else ``~/.cache/mt``), keyed by a SHA-256 of
the corpus bytes and of every setting that changes the result. A second run on the same corpus
re-opens them instead of re-training and re-tokenizing. Entries are written to a temporary
directory and renamed into place, so an interrupted run never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from mt.config import DataConfig
from mt.data import CorpusReader
from mt.errors import DataError
from mt.terminology import TermDictionary, annotate, training_terms
from mt.tokenizer import TRAINING_SAMPLE_SENTENCES, Tokenizer, train_tokenizer

CHUNK_PAIRS = 10_000
CACHE_ENV = "MT_CACHE"
DATA_FILE, META_FILE = "data.arrow", "meta.json"


def cache_root(data: DataConfig) -> Path:
    """``data.cache_dir``, else ``$MT_CACHE``, else ``~/.cache/mt``."""
    return Path(data.cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mt")


def _key(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def _tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    digest = hashlib.sha256(f"{tokenizer.src_lang}|{tokenizer.tgt_lang}|{tokenizer.joint}".encode())
    digest.update(tokenizer.src.serialized_model_proto())
    digest.update(tokenizer.tgt.serialized_model_proto())
    return digest.hexdigest()


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temporary directory into place (another process may have won the race)."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _temporary(final: Path) -> Path:
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def cached_tokenizer(readers: Sequence[CorpusReader], data: DataConfig) -> Tokenizer:
    """The SentencePiece tokenizer for the union of ``readers``' corpora (each pair once, whatever
    its corpus' weight) under ``data``'s settings: loaded from the cache, or trained on the
    streamed pairs and cached. Raises ``DataError``."""
    key = _key(*(reader.content_key() for reader in readers), data.src_lang, data.tgt_lang, data.vocab_size,
               data.model_type, data.joint_vocab, TRAINING_SAMPLE_SENTENCES)
    final = cache_root(data) / "tokenizers" / key
    if not final.is_dir():
        tokenizer = train_tokenizer((s for reader in readers for s, _ in reader), (t for reader in readers for _, t in reader),
                                    data.src_lang, data.tgt_lang, data.vocab_size, data.model_type, data.joint_vocab)
        tmp = _temporary(final)
        tokenizer.save(tmp)
        _publish(tmp, final)
    return Tokenizer.load(final)


@dataclass
class TokenizedCorpus:
    """Subword ids of a parallel corpus in an Arrow table (memory-mapped when read from the cache).

    ``src_lengths``/``tgt_lengths``: (N,) int64 arrays of tokens per sentence, without EOS/BOS.
    ``rows(indices)`` reads the ids of some pairs. ``dropped_long``/``dropped_empty`` count the
    pairs left out (over ``max_length`` tokens on either side; an empty side).
    """

    table: "datasets.Dataset"  # noqa: F821 (columns src, tgt: list<int32>; src_len, tgt_len: int32)
    origin: str
    dropped_long: int = 0
    dropped_empty: int = 0

    def __post_init__(self) -> None:
        # Straight from the Arrow columns: datasets' numpy formatting costs ~1 s per 30k rows.
        self.src_lengths = self.table.data.column("src_len").to_numpy().astype(np.int64)
        self.tgt_lengths = self.table.data.column("tgt_len").to_numpy().astype(np.int64)

    def __len__(self) -> int:
        return len(self.src_lengths)

    def rows(self, indices: Sequence[int]) -> tuple[list[list[int]], list[list[int]]]:
        """The (source ids, target ids) of the pairs at ``indices``, in that order."""
        picked = self.table.select_columns(["src", "tgt"])[[int(i) for i in indices]]
        return picked["src"], picked["tgt"]

    @classmethod
    def from_lists(cls, src_ids: Sequence[list[int]], tgt_ids: Sequence[list[int]], origin: str = "in memory") -> "TokenizedCorpus":
        """An in-memory corpus (dev sets, tests)."""
        import datasets

        return cls(datasets.Dataset.from_dict(_columns(src_ids, tgt_ids)), origin)

    @classmethod
    def concatenate(cls, parts: Sequence["TokenizedCorpus"]) -> "TokenizedCorpus":
        """One corpus of ``parts``' rows in order (still memory-mapped), with their drop counts summed."""
        import datasets

        if len(parts) == 1:
            return parts[0]
        return cls(datasets.concatenate_datasets([part.table for part in parts]), " + ".join(p.origin for p in parts),
                   sum(p.dropped_long for p in parts), sum(p.dropped_empty for p in parts))


def _columns(src_ids: Sequence[list[int]], tgt_ids: Sequence[list[int]]) -> dict[str, list]:
    return {"src": list(src_ids), "tgt": list(tgt_ids),
            "src_len": [len(s) for s in src_ids], "tgt_len": [len(t) for t in tgt_ids]}


def _encoded_chunks(reader: CorpusReader, tokenizer: Tokenizer, data: DataConfig, counts: dict[str, int],
                    terminology: TermDictionary | None) -> Iterator[dict]:
    def chunks() -> Iterator[list[tuple[str, str]]]:
        chunk = []
        for pair in reader:
            chunk.append(pair)
            if len(chunk) == CHUNK_PAIRS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    for chunk in chunks():
        src_ids = tokenizer.encode_src([s for s, _ in chunk])
        if terminology is not None:
            annotated = [training_terms(terminology, s, t, data.terminology_rate, data.terminology_substitute) for s, t in chunk]
            src_ids = [annotate(tokenizer, s, ids, found) for (s, _), ids, (found, _) in zip(chunk, src_ids, annotated)]
            chunk = [(s, trained) for (s, _), (_, trained) in zip(chunk, annotated)]
        tgt_ids = tokenizer.encode_tgt([t for _, t in chunk])
        keep = [i for i, (s, t) in enumerate(zip(src_ids, tgt_ids)) if len(s) <= data.max_length and len(t) <= data.max_length]
        counts["dropped_long"] += len(chunk) - len(keep)
        if keep:
            yield _columns([src_ids[i] for i in keep], [tgt_ids[i] for i in keep])


def tokenize_corpus(reader: CorpusReader, tokenizer: Tokenizer, data: DataConfig,
                    terminology: TermDictionary | None = None) -> TokenizedCorpus:
    """Open the tokenized corpus of ``reader`` from the cache, or encode it (in chunks, streaming)
    into a new cache entry first. Pairs longer than ``data.max_length`` tokens on either side are
    left out and counted. With a ``terminology`` dictionary, sources carry the target terms of
    ``data.terminology_rate`` of its terms found, ``data.terminology_substitute`` of them swapped for
    another target (``mt.terminology.training_terms``). Raises
    ``DataError`` on bad input or when every pair is too long."""
    import datasets
    import pyarrow as pa

    annotation = (terminology.fingerprint(), data.terminology_rate, data.terminology_substitute) if terminology is not None else ()
    key = _key(reader.content_key(), _tokenizer_fingerprint(tokenizer), data.max_length, *annotation)
    final = cache_root(data) / "corpora" / key
    if not (final / META_FILE).is_file():
        tmp = _temporary(final)
        counts = {"dropped_long": 0}
        schema = pa.schema([("src", pa.list_(pa.int32())), ("tgt", pa.list_(pa.int32())),
                            ("src_len", pa.int32()), ("tgt_len", pa.int32())])
        rows = 0
        try:
            with pa.OSFile(str(tmp / DATA_FILE), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
                for columns in _encoded_chunks(reader, tokenizer, data, counts, terminology):
                    writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=schema))
                    rows += len(columns["src"])
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not rows:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"every training pair of {reader.origin} is longer than data.max_length={data.max_length} tokens")
        meta = {"origin": reader.origin, "pairs": rows, "dropped_long": counts["dropped_long"],
                "dropped_empty": reader.dropped_empty}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _publish(tmp, final)
    meta = json.loads((final / META_FILE).read_text(encoding="utf-8"))
    table = datasets.Dataset.from_file(str(final / DATA_FILE), in_memory=False)
    return TokenizedCorpus(table, meta["origin"], meta["dropped_long"], meta["dropped_empty"])
