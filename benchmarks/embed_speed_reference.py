"""Yardsticks for ``embed_speed.py``: model FLOPs, this CPU's fp32 peak, a bare-backbone pair.

- ``gflop_per_clip``: multiply-adds x 2 of one STA clip, counted by PyTorch's FlopCounterMode
  (convolutions and matmuls; the elementwise rest is < 1%).
- ``matmul_peak_gflops``: onnxruntime's fp32 MatMul of two 2048x2048 matrices, the most an fp32
  kernel reaches on this CPU with these threads: a runtime whose convolutions run at this rate
  has nothing left to gain in fp32.
- ``backbone_rows``: a bare torchvision backbone (ResNet50 at 224x224 by default, the
  issue's reference measurement of "about 55 vs 16 images/s"), PyTorch eager vs onnxruntime,
  each pair in a fresh process, once with glibc's malloc defaults and once with
  ``mcreid.malloc.keep_freed_memory`` (what ``TorchEmbedder`` uses).

    python -m benchmarks.embed_speed_reference resnet50 224 32 2 5 2   # one pair, JSON rows on stdout
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.timing import round_robin, time_calls
from export.runtime import create_session


def gflop_per_clip(model: object, seq_len: int, size: tuple[int, int]) -> float:
    """GFLOP (2 x multiply-adds) of one ``(1, seq_len, 3, H, W)`` float clip through ``model``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    clip = torch.zeros(1, seq_len, 3, *size)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(clip)
    return counter.get_total_flops() / 1e9


def _session(model: object, threads: int) -> object:
    """An onnxruntime CPU session for an in-memory ``onnx.ModelProto``, set up as the embedders' are."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="mcreid_yardstick_") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, path)
        return create_session(path, "cpu", threads)


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of onnxruntime's fp32 ``MatMul`` of two ``n x n`` matrices on the CPU.

    From the fastest of ``repeats`` calls: a peak is what the CPU can do, and the slower calls
    only measure what else was running (a median once read 305 GFLOP/s under load, against 445-457).
    """
    from onnx import TensorProto, helper

    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", spec[:2], spec[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    session = _session(model, threads)
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal((n, n), dtype=np.float32) for name in "ab"}
    times, _ = time_calls(lambda: session.run(None, feeds), repeats, warmup=2)
    return 2 * n**3 / min(times) / 1e9


def backbone_rows(name: str, size: int, images: int, threads: int, repeats: int, warmup: int) -> list[dict]:
    """``backbone_pair`` in two fresh processes: glibc's malloc defaults, then keep_freed_memory."""
    rows = []
    for keep, label in (("0", "glibc malloc defaults"), ("1", "keep_freed_memory")):
        command = [sys.executable, "-m", "benchmarks.embed_speed_reference", name, str(size), str(images),
                   str(threads), str(repeats), str(warmup)]
        env = {**os.environ, "MCREID_KEEP_FREED_MEMORY": keep}
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              cwd=Path(__file__).resolve().parents[1])
        if done.returncode != 0:
            raise RuntimeError(f"backbone check failed:\n{done.stderr[-2000:]}")
        for row in json.loads(done.stdout.strip().splitlines()[-1]):
            rows.append({**row, "name": f"{row['name']} ({label})"})
    return rows


def backbone_pair(name: str, size: int, images: int, threads: int, repeats: int, warmup: int) -> list[dict]:
    """Images/s of a random-init torchvision ``name`` at ``size`` x ``size``, PyTorch vs ORT fp32.

    PyTorch runs under ``inference_mode`` with ``threads`` threads, after ``keep_freed_memory()``
    (a no-op when ``MCREID_KEEP_FREED_MEMORY=0``); the ORT model is the same module exported to
    ONNX; both take the same ``images``-image batch, timed round-robin.
    """
    import torch
    import torchvision

    from mcreid.malloc import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)().eval()
    batch = torch.rand(images, 3, size, size)
    program = torch.onnx.export(model, (batch,), input_names=["x"], opset_version=18, dynamo=True, verbose=False)
    session = _session(program.model_proto, threads)
    feeds = {"x": batch.numpy()}

    def eager() -> None:
        with torch.inference_mode():
            model(batch)

    calls = {f"{name} {size}x{size} PyTorch eager fp32": eager,
             f"{name} {size}x{size} ORT fp32": lambda: session.run(None, feeds)}
    times, _ = round_robin(calls, repeats, warmup)
    rows = [{"name": label, "images_per_s": images / statistics.median(t), "repeats": len(t)}
            for label, t in times.items()]
    for row in rows:
        row["ratio_to_pytorch"] = row["images_per_s"] / rows[0]["images_per_s"]
    return rows


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    name_, size_, images_, threads_, repeats_, warmup_ = sys.argv[1:7]
    pair = backbone_pair(name_, int(size_), int(images_), int(threads_), int(repeats_), int(warmup_))
    print(json.dumps(pair))
