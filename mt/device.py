"""Where and in which precision tensors run: device choice, thread count, autocast, and the
process-wide tuning (``tune_process``) that the ``mt`` command applies and a library user may."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import gc
import os
import warnings

import torch

from mt.errors import ConfigError, SlowPrecisionWarning

# oneDNN, which runs torch's CPU matrix multiplies, caches a compiled primitive for every shape it
# meets, up to 1,024 of them; sentence batches come in hundreds of shapes, and in bf16 that cache
# grew a 60-minute training run to 4.5 GB. 64 entries brought the peak RSS of scripts/bench.py's
# bf16 training from 2.27 to 2.01 GB for 3-5% of bf16 training speed. Decoding keeps 1,024: its
# bf16 products come in a bounded set of shapes (mt.packing.bucket_rows; 96 compiled over a
# warm-up and three beam-5 passes of Tatoeba's test set), compiling one costs 1-5 ms with AMX, and
# with 64 entries they were compiled 1,363 times (docs/benchmarks.md, "bf16 decoding that uses the
# AMX units").
ONEDNN_CACHE_CAPACITY = {"training": "64", "decoding": "1024"}
# In bf16 (fp32 matrix multiplies run in MKL instead) torch reaches oneDNN through ideep, which
# keeps its own least-recently-used cache of primitives, 1,024 by default (LRU_CACHE_CAPACITY):
# a Transformer-Tiny bf16 run grew from 0.73 GB after its first update to 1.71 GB after 150, and
# trained at 8,286 target tokens/s by then; 64 entries: 1.02 GB, flat, and 9,235 tokens/s (fp32:
# 0.98 GB). bf16 beam-5 decoding's peak RSS fell from 884 to 490 MB (fp32: 452). Not 0: torch crashes.
IDEEP_CACHE_CAPACITY = "64"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # the precisions' names, as options spell them


def tune_process(training: bool = False) -> None:
    """The process-wide settings the ``mt`` command runs under; nothing in ``mt`` applies them
    on import, so a program that imports ``mt`` keeps its own. Call it first, before torch
    computes anything (oneDNN reads its variable when it first runs). It:

    - caps oneDNN's primitive cache at ``ONEDNN_CACHE_CAPACITY`` entries for ``training`` or
      decoding (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``, unless already set), and ideep's, in front
      of it, at ``IDEEP_CACHE_CAPACITY`` (``LRU_CACHE_CAPACITY``, likewise);
    - has glibc's malloc keep freed blocks (``keep_freed_memory``);
    - freezes the garbage collector at exit: Python's last collection walks every object torch
      created (0.15-0.2 s of a 2 s ``mt translate`` on a 2-core EPYC); frozen objects are skipped,
      and files are closed and atexit handlers run as before.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY["training" if training else "decoding"])
    os.environ.setdefault("LRU_CACHE_CAPACITY", IDEEP_CACHE_CAPACITY)
    keep_freed_memory()
    atexit.register(gc.freeze)


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MB for reuse instead of handing them back
    to the kernel. Returns whether it did (False off glibc, or when ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` is set: then yours apply).

    By default glibc serves blocks above 128 KB-32 MB (a threshold it moves as it goes) with a
    fresh ``mmap`` and returns them on free, so every activation of that size is a new mapping
    whose pages fault in, zeroed by the kernel, on first write: on a 2-core AVX2 EPYC, a ReLU over
    (4096, 1024) fp32 took 5.5 ms that way and 2.3 ms in reused memory. Both thresholds at their
    largest (mallopt M_MMAP_THRESHOLD = 32 MB, M_TRIM_THRESHOLD = 1 GB) keep the peak RSS about
    the same, as the same blocks are reused, but the RSS no longer falls back after a peak.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 * 1024 * 1024)) and bool(mallopt(m_trim_threshold, 1024 ** 3))



def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU. ``ConfigError`` for CUDA asked on a machine without it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA device is available (use --device cpu or auto)")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda[:N]")
    return torch.device(name)


def set_threads(threads: int = 0, processes: int = 1) -> int:
    """Use ``threads`` intra-op threads (0 = this process' share of the cores it may run on, when
    ``processes`` processes share them). Returns the count; ``ConfigError`` for a negative count."""
    if threads < 0:
        raise ConfigError(f"--threads must be 0 (all cores available) or a positive count, got {threads}")
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    count = threads or max(available // processes, 1)
    torch.set_num_threads(count)
    return count


def _cpuinfo() -> str:
    """The text of /proc/cpuinfo, or "" where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


def cpu_field(name: str) -> str:
    """The value of the first ``name`` line of /proc/cpuinfo ("vendor_id", "model name"), or ""
    where there is none."""
    fields = (line.split(":", 1) for line in _cpuinfo().splitlines() if ":" in line)
    return next((value.strip() for key, value in fields if key.strip() == name), "")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix units (AMX or AVX512-BF16), read from /proc/cpuinfo."""
    flags = _cpuinfo()
    return any(flag in flags for flag in (" amx_bf16", " avx512_bf16"))


def mkl_is_slow_here() -> bool:
    """Whether torch's fp32 matrix multiplies (Intel MKL) run a generic code path on this CPU:
    True on a CPU whose vendor is not Intel, where oneDNN has the faster fp32 kernels (read from
    /proc/cpuinfo; False where it cannot be read, or where torch has no oneDNN).

    On a 2-core AMD EPYC with AVX-512, 2 threads, ``scripts/bench.py`` measured a (2048 x 2048)
    fp32 product at 158 GFLOP/s in MKL 2024.0 and at 370 in oneDNN (weights prepacked, as
    ``mt.packing`` runs them; that module acts on this answer).
    """
    vendor = cpu_field("vendor_id")
    return torch.backends.mkldnn.is_available() and vendor not in ("", "GenuineIntel")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bf16 on a CPU with bf16 units or a CUDA device that supports it, else fp32.

    An explicit ``bf16`` on a CPU without bf16 units is honoured with a ``SlowPrecisionWarning``:
    torch emulates it there (on an AVX2-only AMD EPYC, a (1000 x 256) @ (256 x 1024) bf16 matmul ran
    at 8 GFLOP/s against 85 in fp32, one thread). Raises ``ConfigError`` for an unknown precision
    and for fp16 off CUDA.
    """
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
    if precision not in DTYPES:
        raise ConfigError(f"unknown precision {precision!r}: use auto, fp32, bf16 or fp16 (CUDA)")
    if precision == "bf16" and device.type == "cpu" and not cpu_supports_bf16():
        warnings.warn("this CPU has no bf16 units (AVX512-BF16 or AMX), so bf16 is emulated and runs about 10x "
                      "slower than fp32 here: use --precision auto or fp32", SlowPrecisionWarning, stacklevel=2)
    return DTYPES[precision]


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed-precision context for ``dtype`` (weights stay fp32); a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
