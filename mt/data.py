"""Read parallel corpora: two plain files sharing a prefix, a TSV file, or a Hugging Face dataset.

A corpus spec is a string:

- ``path/train`` with ``--src en --tgt de`` reads ``path/train.en`` and ``path/train.de``
  (one sentence a line, line N of one file translates line N of the other);
- ``path/train.tsv`` reads columns 1 (source) and 2 (target); further columns are ignored;
- ``path/dir`` saved with ``datasets.Dataset.save_to_disk``, a data file ``*.json|jsonl|csv|parquet``,
  or a hub name ``NAME[:SPLIT]`` (online users only) is read through ``datasets``. Rows hold either
  a ``translation`` mapping ``{src: ..., tgt: ...}`` (WMT style) or one column per language code.

Lines are decoded as strict UTF-8 (a BOM is removed), stripped, and pairs with an empty side are
dropped and counted. Control characters are removed and runs of whitespace collapsed; a line of
only invisible format characters (zero-width spaces and joiners, BOMs) counts as empty. A line
that is mostly NUL bytes (UTF-16 read as UTF-8, or a binary file) or longer than
``MAX_LINE_BYTES`` is an error naming the file and line. Corpus files must be regular files: a
training corpus is read more than once (to hash it, to train the tokenizer, to encode it), which a
pipe cannot give.

Sentences to translate come one a line from the command's arguments, a file or stdin (``input_lines``).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import stat
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from mt.errors import ConfigError, DataError

CJK_LANGS = {"zh", "ja", "ko", "yue", "cmn", "wuu"}
# C0/C1 control characters but tab and newline: cleaning turns them into spaces, the CLI shows
# them as \xNN rather than let a sentence move the terminal's cursor (carriage return) or send it
# escape sequences (ESC).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
DATASET_DIRECTORY_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")  # save_to_disk's
DATASET_FILE_TYPES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
# A longer line is no sentence: a file without line breaks (/dev/zero, a binary) would otherwise
# be read into memory whole before anything could look at it.
MAX_LINE_BYTES = 16 * 2**20
# ASCII text stored as UTF-16 is valid UTF-8 with a NUL after every character ("T\0w\0o\0"):
# a line with this share of NUL bytes or more is refused rather than trained on as "T w o".
NUL_SHARE = 0.25
# Cell values of a TSV first row that name its columns rather than hold a sentence.
HEADER_NAMES = {"src", "tgt", "source", "target", "text", "sentence", "translation", "english", "chinese", "mandarin",
                "german", "french", "czech"}


@dataclass
class ParallelCorpus:
    """Aligned source/target sentences and what reading them dropped."""

    sources: list[str]
    targets: list[str]
    origin: str  # human-readable description of the files read
    dropped_empty: int = 0
    header: str | None = None  # a TSV's first row, skipped because it named the columns
    files: list[Path] = field(default_factory=list)  # the files read (none for a dataset)

    def __len__(self) -> int:
        return len(self.sources)


def decode_lines(stream: BinaryIO, name: str, encoding_errors: str = "strict") -> Iterator[str]:
    """Yield the lines of a binary stream as text without line ends, one at a time.

    A UTF-8 BOM on the first line is removed. Raises ``DataError`` naming ``name`` and the
    1-based line number on invalid UTF-8 (unless ``encoding_errors="replace"``), on a line over
    ``MAX_LINE_BYTES`` bytes, and on a line of which ``NUL_SHARE`` or more of the bytes are NUL.
    """
    for number in itertools.count(1):
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(f"{name}, line {number}: over {MAX_LINE_BYTES // 2**20} MiB without a line break: "
                            "this is not one sentence per line (a binary file or a device?)")
        if raw.count(0) >= NUL_SHARE * len(raw.rstrip(b"\r\n")) > 0:
            raise DataError(f"{name}, line {number}: {raw.count(0)} of its {len(raw)} bytes are NUL: this looks like "
                            "UTF-16 or a binary file, not UTF-8 text. Convert it, e.g. iconv -f UTF-16 -t UTF-8")
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
        raise DataError(f"{path} is a directory, not a text file") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        yield from decode_lines(handle, str(path), encoding_errors)


def count_lines(path: Path) -> int | None:
    """Lines of a regular file (for a progress bar's total), None for anything else."""
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def input_lines(text: list[str], input_file: Path | None, encoding_errors: str = "strict") -> tuple[Iterable[str], str]:
    """The sentences to translate and how ``Translator.translate`` should chunk them: ``text`` (the
    command's arguments), else ``input_file`` (both in whole chunks), else stdin (streamed; see
    ``stdin_chunking``)."""
    if text:
        return text, "whole"
    if input_file:
        return read_lines(input_file, encoding_errors), "whole"
    return decode_lines(sys.stdin.buffer, "stdin", encoding_errors), stdin_chunking()


def stdin_chunking() -> str:
    """A terminal's lines one at a time, a file redirected to stdin (``mt translate < file``) in
    whole chunks, anything else (a pipe) in growing chunks."""
    if sys.stdin.isatty():
        return "lines"
    try:
        is_file = stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError):  # io.UnsupportedOperation, a closed stream
        is_file = False
    return "whole" if is_file else "growing"


def clean_text(text: str) -> str:
    """Drop control characters and collapse runs of whitespace to one space. A text of nothing
    but invisible format characters (Unicode category Cf: zero-width space, joiners, BOM) becomes
    empty; inside visible text they stay (a ZWJ emoji, a ZWNJ in Persian)."""
    cleaned = " ".join(CONTROL_CHARACTERS.sub(" ", text).split())
    if all(unicodedata.category(character) == "Cf" or character == " " for character in cleaned):
        return ""
    return cleaned


def weighted_spec(entry: str) -> tuple[str, float]:
    """``SPEC@WEIGHT`` -> (SPEC, WEIGHT); a plain ``SPEC`` has weight 1. The weight sets how often
    the corpus' pairs are drawn per epoch relative to the others (2 = each pair twice, 0.5 = half of
    them, a new random half every epoch). Raises ``ConfigError`` for a weight that is not positive."""
    spec, separator, weight = entry.rpartition("@")
    if not separator or not re.fullmatch(r"[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?", weight):
        return entry, 1.0
    if float(weight) <= 0:
        raise ConfigError(f"corpus weight must be positive: {entry!r}")
    return spec, float(weight)


def check_regular_file(path: Path) -> None:
    """Raise ``DataError`` unless the corpus file ``path`` is a regular file (or a symlink to
    one): a directory, and a pipe or device, each get their own message."""
    try:
        mode = Path(path).stat().st_mode
    except OSError as error:
        raise DataError(f"cannot read corpus file {path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path} is a directory, not a corpus file")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path} is not a regular file (a pipe, socket or device): a corpus is read more than "
                        "once, so save it to a file first")


def looks_like_header(columns: list[str], src_lang: str, tgt_lang: str) -> bool:
    """Whether the first two cells of a TSV's first row name columns (``en<TAB>zh``,
    ``source<TAB>target``) instead of holding a sentence pair."""
    names = HEADER_NAMES | {src_lang.lower(), tgt_lang.lower()}
    return len(columns) >= 2 and all(cell.strip().lower() in names for cell in columns[:2])


class CorpusReader:
    """The cleaned sentence pairs of a corpus spec, streamed: iterate as often as needed, one
    pair in memory at a time (a corpus of millions of pairs is never held as Python lists).

    A pair with an empty side is left out (``keep_empty``: kept, so that pair N is line N, as a
    test set scored line by line needs). After a complete iteration, ``dropped_empty`` counts the
    pairs left out, and
    ``header`` holds a TSV's first row when it named columns (``en<TAB>zh``) and was skipped.
    Raises ``DataError`` on a missing file or one that is not a regular file (a directory, a pipe),
    and while iterating on unequal line counts (both counts given), invalid UTF-8 or NUL-heavy
    lines (file and line), a TSV line with fewer than two columns, or an empty corpus.
    """

    def __init__(self, spec: str, src_lang: str, tgt_lang: str, encoding_errors: str = "strict", keep_empty: bool = False):
        if not spec:
            raise DataError("no corpus given")
        self.spec, self.src_lang, self.tgt_lang, self.encoding_errors = spec, src_lang, tgt_lang, encoding_errors
        self.keep_empty = keep_empty
        path = Path(spec)
        if path.suffix == ".tsv":
            self.kind, self.files = "tsv", [path]
        elif (Path(f"{spec}.{src_lang}").exists() or Path(f"{spec}.{tgt_lang}").exists()
              or not (path.is_dir() or path.suffix in DATASET_FILE_TYPES or not path.parent.exists() or ":" in spec)):
            self.kind, self.files = "plain", [Path(f"{spec}.{src_lang}"), Path(f"{spec}.{tgt_lang}")]
        elif path.is_dir() and not any((path / name).is_file() for name in DATASET_DIRECTORY_FILES):
            raise DataError(f"{path} is a directory, not a corpus: give PREFIX (for PREFIX.{src_lang} and "
                            f"PREFIX.{tgt_lang}), a .tsv file, or a directory saved by datasets.Dataset.save_to_disk")
        else:
            self.kind, self.files = "dataset", []
        self.origin = " + ".join(map(str, self.files)) if self.files else f"dataset {spec}"
        self.dropped_empty = 0
        self.header: str | None = None
        for existing in (file for file in self.files if file.exists()):
            check_regular_file(existing)
        if self.kind == "tsv" and path.exists():
            first = next(read_lines(path, encoding_errors), "")
            self.header = first if looks_like_header(first.split("\t"), src_lang, tgt_lang) else None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        raw = {"tsv": self._tsv_pairs, "plain": self._plain_pairs, "dataset": self._dataset_pairs}[self.kind]()
        kept = dropped = 0
        for source, target in raw:
            source, target = clean_text(source), clean_text(target)
            if (source and target) or self.keep_empty:
                kept += 1
                yield source, target
            else:
                dropped += 1
        self.dropped_empty = dropped
        if not kept:
            raise DataError(f"corpus {self.origin} has no sentence pairs (after dropping {dropped} empty ones)")

    def content_key(self) -> str:
        """A SHA-256 over what the pairs are read from (file bytes, or the dataset's fingerprint)
        and how (languages, error handling): equal keys mean equal pairs."""
        digest = hashlib.sha256(f"{self.kind}|{self.src_lang}|{self.tgt_lang}|{self.encoding_errors}".encode())
        if self.kind == "dataset":
            digest.update(self._load_dataset()._fingerprint.encode())
        self.check_files()
        for path in self.files:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        return digest.hexdigest()

    def check_files(self) -> None:
        """Raise ``DataError`` naming the missing files of a plain or TSV corpus: the same message
        whichever command reads it first (``mt tokenize``, or ``mt train`` hashing it)."""
        missing = [str(p) for p in self.files if not p.exists()]
        if not missing:
            return
        if self.kind == "tsv":
            raise DataError(f"corpus file not found: {missing[0]}")
        if Path(self.spec).exists():
            raise DataError(
                f"corpus {self.spec!r} is one file{'' if Path(self.spec).is_file() else ' (not even a regular one)'}, "
                f"and {' and '.join(missing)} do not exist: a plain corpus is two files PREFIX.{self.src_lang} and "
                f"PREFIX.{self.tgt_lang}; one file must be FILE.tsv (source<TAB>target)")
        raise DataError(
            f"corpus {self.spec!r}: missing {' and '.join(missing)}. A plain corpus is two files "
            f"PREFIX.{self.src_lang} and PREFIX.{self.tgt_lang}; pass a .tsv file or a dataset otherwise."
        )

    def _plain_pairs(self) -> Iterator[tuple[str, str]]:
        self.check_files()
        src_path, tgt_path = self.files
        sources, targets = read_lines(src_path, self.encoding_errors), read_lines(tgt_path, self.encoding_errors)
        count = 0
        for source, target in itertools.zip_longest(sources, targets):
            if source is None or target is None:
                n_src = count + (source is not None) + sum(1 for _ in sources)
                n_tgt = count + (target is not None) + sum(1 for _ in targets)
                raise DataError(
                    f"{src_path} has {n_src} lines but {tgt_path} has {n_tgt}: "
                    "the two sides of a parallel corpus must have one line per sentence pair."
                )
            count += 1
            yield source, target

    def _tsv_pairs(self) -> Iterator[tuple[str, str]]:
        self.check_files()
        path = self.files[0]
        for number, line in enumerate(read_lines(path, self.encoding_errors), start=1):
            if number == 1 and self.header is not None:
                continue
            if not line.strip():
                yield "", ""
                continue
            columns = line.split("\t")
            if len(columns) < 2:
                raise DataError(f"{path}, line {number}: expected source<TAB>target, found {len(columns)} column(s)")
            yield columns[0], columns[1]

    def _load_dataset(self):
        import datasets  # imported here: it is slow to import and only this reader needs it

        path, spec = Path(self.spec), self.spec
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
        return dataset

    def _dataset_pairs(self) -> Iterator[tuple[str, str]]:
        dataset = self._load_dataset()
        src, tgt, columns = self.src_lang, self.tgt_lang, dataset.column_names
        if "translation" in columns:
            for row in dataset.select_columns(["translation"]):
                pair = row["translation"] or {}
                yield pair.get(src) or "", pair.get(tgt) or ""
        elif src in columns and tgt in columns:
            for row in dataset.select_columns([src, tgt]):
                yield row[src] or "", row[tgt] or ""
        else:
            raise DataError(
                f"dataset {self.spec!r} has columns {columns}: expected 'translation' or the language columns "
                f"{src!r} and {tgt!r}"
            )


def read_corpus(spec: str, src_lang: str, tgt_lang: str, encoding_errors: str = "strict",
                keep_empty: bool = False) -> ParallelCorpus:
    """Read a whole parallel corpus into memory (see the module docstring and ``CorpusReader``
    for the specs, ``keep_empty`` and the errors raised). For dev/test sets; training streams
    through ``mt.store``."""
    reader = CorpusReader(spec, src_lang, tgt_lang, encoding_errors, keep_empty)
    sources, targets = [], []
    for source, target in reader:
        sources.append(source)
        targets.append(target)
    return ParallelCorpus(sources, targets, reader.origin, reader.dropped_empty, reader.header, reader.files)


def is_cjk(lang: str) -> bool:
    """Whether a language code names a language written without spaces between words."""
    return lang.split("-")[0].split("_")[0].lower() in CJK_LANGS
