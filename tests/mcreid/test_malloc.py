"""keep_freed_memory: freed heap memory is reused, not faulted back in (glibc Linux)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from mcreid.malloc import keep_freed_memory

# Allocates, touches and frees 64 MB three times and prints the minor page faults of the last two
# rounds. glibc's defaults mmap a block that size and unmap it on free, so every round faults all
# of its pages in again.
PROBE = """
import resource, sys
import numpy as np
core = getattr(np, "_core", None) or np.core
core.multiarray._set_madvise_hugepage(False)  # count 4 KB pages, as PyTorch's tensors get them
from mcreid.malloc import keep_freed_memory
print(keep_freed_memory())
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(64 << 20, np.uint8).sum()
start = faults()
for _ in range(2):
    np.ones(64 << 20, np.uint8).sum()
print(faults() - start)
"""

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="mallopt is glibc's")


def probe(env_value: str) -> tuple[bool, int]:
    env = {**os.environ, "MCREID_KEEP_FREED_MEMORY": env_value}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@glibc
def test_freed_memory_is_reused_instead_of_faulted_back():
    pages = 2 * (64 << 20) // 4096
    applied, faults = probe("1")
    assert applied
    assert faults < pages // 10
    applied, faults = probe("0")  # glibc's defaults: the block goes back to the OS each time
    assert not applied
    assert faults > pages // 2


def test_negative_pad_is_rejected():
    with pytest.raises(ValueError, match="pad_bytes"):
        keep_freed_memory(-1)
