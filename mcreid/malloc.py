"""Keep freed heap memory for reuse instead of handing it back to the OS (glibc only).

PyTorch on the CPU allocates and frees tens of MB of activations per forward pass. With glibc's
defaults, blocks over 32 MB are mmap'ed and unmapped again, and freeing trims the heap, so the next
pass faults every page back in: for the ResNet50 STA at 8 clips x 4 x 256 x 128 that was 700k-900k
page faults per call (``benchmarks/embed_speed.py``: 129-187 -> 79-90 ms per clip on the 2-core dev
machine; the bare ResNet50 at 32 x 224 x 224 went from 16-18 to 35-38 images/s over four runs).
``M_MMAP_MAX = 0`` serves every block from the heap and a large ``M_TOP_PAD`` keeps freed memory
there, as jemalloc/tcmalloc would. The process keeps its peak heap (plus up to the pad) instead of
returning it. ONNX Runtime has its own arena and does not need it.

``TorchEmbedder`` calls it when it runs on the CPU. (CPU training gains less: fp32 train steps of 4
clips went from 2.4-2.7 to 2.9-3.1 clips/s, and real training runs on GPUs, so it is not called there.)

Set ``MCREID_KEEP_FREED_MEMORY=0`` to keep glibc's defaults (e.g. to measure the difference).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

logger = logging.getLogger(__name__)

M_TOP_PAD, M_MMAP_MAX = -2, -4  # from glibc's <malloc.h>
DEFAULT_PAD_BYTES = 1 << 30
ENV = "MCREID_KEEP_FREED_MEMORY"

_applied: int | None = None


def keep_freed_memory(pad_bytes: int = DEFAULT_PAD_BYTES) -> bool:
    """Ask glibc to serve blocks from the heap and keep up to ``pad_bytes`` of it when freed.

    Process-wide and idempotent. Returns True when the setting is in effect; False on other C
    libraries or platforms, or when ``MCREID_KEEP_FREED_MEMORY=0``.
    """
    global _applied
    if pad_bytes < 0:
        raise ValueError(f"pad_bytes must be >= 0, got {pad_bytes}")
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if _applied == pad_bytes:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_MAX, ctypes.c_int(0)))
        ok = bool(libc.mallopt(M_TOP_PAD, ctypes.c_int(min(pad_bytes, 2**31 - 1)))) and ok
    except (OSError, AttributeError) as error:
        logger.debug("mallopt unavailable: %s", error)
        return False
    if ok:
        _applied = pad_bytes
        logger.debug("glibc malloc keeps up to %d MB of freed memory", pad_bytes >> 20)
    return ok
