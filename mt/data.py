"""Read parallel corpora: two plain files sharing a prefix, a TSV file, or a Hugging Face dataset.

A corpus spec is a string:

- ``path/train`` with ``--src en --tgt de`` reads ``path/train.en`` and ``path/train.de``
  (one sentence a line, line N of one file translates line N of the other);
- ``path/train.tsv`` reads columns 1 (source) and 2 (target); further columns are ignored;
- ``path/dir`` saved with ``datasets.Dataset.save_to_disk``, a data file ``*.json|jsonl|csv|parquet``,
  or a hub name ``NAME[:SPLIT]`` (online users only) is read through ``datasets``. Rows hold either
  a ``translation`` mapping ``{src: ..., tgt: ...}`` (WMT style) or one column per language code.

Lines are decoded as strict UTF-8 (a BOM is removed), stripped, and pairs with an empty side are
dropped and counted. Control characters are removed and runs of whitespace collapsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from mt.errors import DataError

CJK_LANGS = {"zh", "ja", "ko", "yue", "cmn", "wuu"}
# C0/C1 control characters (tab, newline and carriage return are whitespace and handled by split()).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
DATASET_FILE_TYPES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class ParallelCorpus:
    """Aligned source/target sentences and what reading them dropped."""

    sources: list[str]
    targets: list[str]
    origin: str  # human-readable description of the files read
    dropped_empty: int = 0

    def __len__(self) -> int:
        return len(self.sources)


def decode_lines(stream: BinaryIO, name: str, encoding_errors: str = "strict") -> Iterator[str]:
    """Yield the lines of a binary stream as text without line ends, one at a time.

    A UTF-8 BOM on the first line is removed. Raises ``DataError`` naming ``name`` and the
    1-based line number on invalid UTF-8, unless ``encoding_errors="replace"``.
    """
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            line = raw.decode("utf-8", errors=encoding_errors)
        except UnicodeDecodeError as error:
            raise DataError(
                f"{name}, line {number}: not valid UTF-8 (byte {error.start}). "
                "Re-encode it as UTF-8, or pass --encoding-errors replace to carry on."
            ) from None
        yield line.rstrip("\r\n")


def read_lines(path: Path, encoding_errors: str = "strict") -> Iterator[str]:
    """Yield the lines of a UTF-8 text file (streaming; see ``decode_lines``).

    Raises ``DataError`` if the file does not exist or on invalid UTF-8 (file and line).
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"expected a file, got a directory: {path}") from None
    with handle:
        yield from decode_lines(handle, str(path), encoding_errors)


def clean_text(text: str) -> str:
    """Drop control characters and collapse runs of whitespace to one space."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split())


def _clean_pairs(pairs: Iterable[tuple[str, str]], origin: str) -> ParallelCorpus:
    sources, targets, dropped = [], [], 0
    for source, target in pairs:
        source, target = clean_text(source), clean_text(target)
        if source and target:
            sources.append(source)
            targets.append(target)
        else:
            dropped += 1
    if not sources:
        raise DataError(f"corpus {origin} has no sentence pairs (after dropping {dropped} empty ones)")
    return ParallelCorpus(sources, targets, origin, dropped)


def _read_plain_pair(prefix: str, src_lang: str, tgt_lang: str, encoding_errors: str) -> ParallelCorpus:
    src_path, tgt_path = Path(f"{prefix}.{src_lang}"), Path(f"{prefix}.{tgt_lang}")
    missing = [str(p) for p in (src_path, tgt_path) if not p.is_file()]
    if missing:
        raise DataError(
            f"corpus {prefix!r}: missing {' and '.join(missing)}. A plain corpus is two files "
            f"PREFIX.{src_lang} and PREFIX.{tgt_lang}; pass a .tsv file or a dataset otherwise."
        )
    sources = list(read_lines(src_path, encoding_errors))
    targets = list(read_lines(tgt_path, encoding_errors))
    if len(sources) != len(targets):
        raise DataError(
            f"{src_path} has {len(sources)} lines but {tgt_path} has {len(targets)}: "
            "the two sides of a parallel corpus must have one line per sentence pair."
        )
    return _clean_pairs(zip(sources, targets), f"{src_path} + {tgt_path}")


def _read_tsv(path: Path, encoding_errors: str) -> ParallelCorpus:
    def pairs() -> Iterator[tuple[str, str]]:
        for number, line in enumerate(read_lines(path, encoding_errors), start=1):
            if not line.strip():
                yield "", ""
                continue
            columns = line.split("\t")
            if len(columns) < 2:
                raise DataError(f"{path}, line {number}: expected source<TAB>target, found {len(columns)} column(s)")
            yield columns[0], columns[1]

    return _clean_pairs(pairs(), str(path))


def _read_dataset(spec: str, src_lang: str, tgt_lang: str) -> ParallelCorpus:
    import datasets  # imported here: it is slow to import and only this reader needs it

    path = Path(spec)
    try:
        if path.is_dir():
            dataset = datasets.load_from_disk(str(path))
        elif path.suffix in DATASET_FILE_TYPES and path.is_file():
            dataset = datasets.load_dataset(DATASET_FILE_TYPES[path.suffix], data_files=str(path), split="train")
        else:
            name, _, split = spec.partition(":")
            dataset = datasets.load_dataset(name, split=split or "train")
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as error:
        raise DataError(f"cannot load dataset {spec!r}: {error}") from None
    if isinstance(dataset, datasets.DatasetDict):
        raise DataError(f"dataset {spec!r} has splits {list(dataset)}: name one as {spec}:SPLIT")
    columns = dataset.column_names
    if "translation" in columns:
        rows = dataset["translation"]
        pairs = ((row.get(src_lang) or "", row.get(tgt_lang) or "") for row in rows)
    elif src_lang in columns and tgt_lang in columns:
        pairs = zip(dataset[src_lang], dataset[tgt_lang])
    else:
        raise DataError(
            f"dataset {spec!r} has columns {columns}: expected 'translation' or the language columns "
            f"{src_lang!r} and {tgt_lang!r}"
        )
    return _clean_pairs(((s or "", t or "") for s, t in pairs), f"dataset {spec}")


def read_corpus(spec: str, src_lang: str, tgt_lang: str, encoding_errors: str = "strict") -> ParallelCorpus:
    """Read a parallel corpus from a spec (see the module docstring).

    Raises ``DataError`` on a missing file, unequal line counts (both counts given), invalid
    UTF-8 (file and line), a TSV line with fewer than two columns, or an empty corpus.
    """
    if not spec:
        raise DataError("no corpus given")
    path = Path(spec)
    if path.suffix == ".tsv":
        return _read_tsv(path, encoding_errors)
    if Path(f"{spec}.{src_lang}").exists() or Path(f"{spec}.{tgt_lang}").exists():
        return _read_plain_pair(spec, src_lang, tgt_lang, encoding_errors)
    if path.is_dir() or path.suffix in DATASET_FILE_TYPES or not path.parent.exists() or ":" in spec:
        return _read_dataset(spec, src_lang, tgt_lang)
    return _read_plain_pair(spec, src_lang, tgt_lang, encoding_errors)


def is_cjk(lang: str) -> bool:
    """Whether a language code names a language written without spaces between words."""
    return lang.split("-")[0].split("_")[0].lower() in CJK_LANGS
