"""onnxruntime sessions: execution-provider choice, CPU threads, clear errors. No torch here.

``onnxruntime-gpu`` lists the TensorRT and CUDA providers on every machine, GPU or not; asking for
them where no GPU (or no CUDA 13 / cuDNN 9 / TensorRT library) is present makes onnxruntime print
an error and a warning and silently run on the CPU. So a provider counts as usable only when
onnxruntime lists it *and* the machine can run it: an NVIDIA driver that reports at least one
device (checked through ``libcuda`` with ctypes, which costs nothing and prints nothing), plus the
TensorRT library for TensorRT. On a CPU-only machine the GPU providers are therefore never asked
for and nothing is printed; where a GPU provider is asked for and still fails to start,
onnxruntime's own message (naming the missing library) is kept and we log which provider was
dropped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

logger = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PREFERENCE = (TENSORRT, CUDA, CPU)
# Short names accepted wherever a provider is named (command lines, configs).
PROVIDER_ALIASES: dict[str, str] = {"tensorrt": TENSORRT, "trt": TENSORRT, "cuda": CUDA, "cpu": CPU}

INSTALL_HINT = "pip install -e '.[onnx]' (onnxruntime-gpu on Linux x86_64, onnxruntime elsewhere)"


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or an ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"the ONNX embedders need onnxruntime: {INSTALL_HINT}") from exc
    return onnxruntime


@functools.lru_cache(maxsize=1)
def cuda_device_count() -> int:
    """NVIDIA GPUs the driver reports (0 without a driver); never raises, never prints."""
    name = ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        libcuda = ctypes.CDLL(name)
        if libcuda.cuInit(0) != 0:
            return 0
        count = ctypes.c_int(0)
        if libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return int(count.value)
    except (OSError, AttributeError):
        return 0


@functools.lru_cache(maxsize=1)
def tensorrt_library_present() -> bool:
    """Whether the TensorRT runtime library (libnvinfer) can be loaded."""
    for name in (ctypes.util.find_library("nvinfer"), "libnvinfer.so.10", "libnvinfer.so"):
        if not name:
            continue
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def usable_providers() -> list[str]:
    """The providers worth asking for here, best first: TensorRT, CUDA, then always CPU."""
    ort = import_onnxruntime()
    listed = set(ort.get_available_providers())
    gpus = cuda_device_count()
    chosen = []
    if gpus and TENSORRT in listed and tensorrt_library_present():
        chosen.append(TENSORRT)
    if gpus and CUDA in listed:
        chosen.append(CUDA)
    chosen.append(CPU)
    return chosen


def resolve_providers(providers: Sequence[str] | str | None) -> list[str]:
    """Full provider names for ``providers`` (None = :func:`usable_providers`).

    Short names ("tensorrt", "cuda", "cpu") are accepted. An unknown name, or one this
    onnxruntime build does not have, raises ValueError listing the choices. CPU is appended as
    the fallback when missing.
    """
    if providers is None:
        return usable_providers()
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p.strip()]
    ort = import_onnxruntime()
    listed = ort.get_available_providers()
    resolved = []
    for name in providers:
        full = PROVIDER_ALIASES.get(name.strip().lower(), name.strip())
        if full not in listed:
            raise ValueError(
                f"execution provider {name!r} is not available in this onnxruntime build; "
                f"choose from {listed} or the short names {sorted(PROVIDER_ALIASES)}"
            )
        if full not in resolved:
            resolved.append(full)
    if CPU not in resolved:
        resolved.append(CPU)
    return resolved


def default_threads() -> int:
    """CPU threads for one session: the cores this process may use (2 on the dev machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _provider_options(name: str) -> dict[str, str]:
    if name == TENSORRT:
        # TensorRT builds an engine per input shape, which takes minutes: cache them across runs.
        cache = Path(tempfile.gettempdir()) / "mcreid_trt_cache"
        cache.mkdir(parents=True, exist_ok=True)
        return {"trt_fp16_enable": "True", "trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache)}
    return {}


def create_session(path: str | Path, providers: Sequence[str] | str | None = None,
                   threads: int | None = None, what: str = "ONNX model", spinning: bool = False) -> Any:
    """An ``onnxruntime.InferenceSession`` for the model at ``path``.

    Args:
        path: the ``.onnx`` file.
        providers: provider names in order of preference, or None to pick TensorRT -> CUDA -> CPU
            from what is usable here.
        threads: intra-op CPU threads (default: the cores this process may use).
        what: what the file is, for the FileNotFoundError message.
        spinning: let idle intra-op threads busy-wait for work. Off by default: the embedder
            shares the CPU with the detector, decoding and the viewer, and busy-waiting threads
            take cycles from them. On the shared 2-core dev machine the ResNet50 STA ran at a
            median 237 ms/clip without spinning vs 279 ms/clip with it (2 threads, 12 rounds).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unknown provider, threads < 1, or a file onnxruntime cannot load.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} (expected an .onnx file, e.g. from mcreid-export)")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    ort = import_onnxruntime()
    wanted = resolve_providers(providers)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    try:
        session = ort.InferenceSession(
            str(path), options, providers=[(p, _provider_options(p)) for p in wanted]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        detail = " ".join(str(exc).split())  # one line: the caller logs it as one message
        raise ValueError(f"onnxruntime cannot load {path}: {detail}") from exc
    active = session.get_providers()
    dropped = [p for p in wanted if p not in active]
    if dropped:
        logger.warning("%s: providers %s could not start (see onnxruntime's message above); running on %s",
                       path.name, dropped, active)
    logger.info("%s on %s, %d CPU threads", path.name, active, options.intra_op_num_threads)
    return session
