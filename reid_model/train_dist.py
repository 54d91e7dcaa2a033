"""torch.distributed plumbing for ``reid_model train`` under torchrun (DDP).

``torchrun --nproc_per_node=N -m reid_model train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; we
then join a process group (gloo on CPU, nccl on CUDA). Without those variables training runs in
one process and every helper here is a no-op.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job. ``world_size == 1`` means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main rank writes checkpoints, logs and evaluation results."""
        return self.rank == 0


def context_from_env(env: dict[str, str] | None = None) -> DistContext:
    """Read RANK / WORLD_SIZE / LOCAL_RANK as torchrun sets them (defaults: a single process)."""
    env = os.environ if env is None else env
    try:
        rank = int(env.get("RANK", 0))
        world_size = int(env.get("WORLD_SIZE", 1))
        local_rank = int(env.get("LOCAL_RANK", rank))
    except ValueError as exc:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers: {exc}") from exc
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid distributed environment: RANK={rank}, WORLD_SIZE={world_size}")
    return DistContext(rank, world_size, local_rank)


def resolve_device(requested: str | None, ctx: DistContext) -> torch.device:
    """The device of this rank: the requested one, CUDA by default, cuda:LOCAL_RANK under DDP."""
    device = torch.device(requested) if requested else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available; use --device cpu")
        if ctx.enabled:
            device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    return device


def init_process_group(ctx: DistContext, device: torch.device) -> None:
    """Join the process group of a torchrun job (no-op for a single process)."""
    if not ctx.enabled:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    # Generous timeout: the other ranks wait at a barrier while rank 0 evaluates on MARS.
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size, timeout=timedelta(hours=3))
    logger.info("rank %d/%d joined the %s process group", ctx.rank, ctx.world_size, backend)


def destroy_process_group(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` for a single process)."""
    if not ctx.enabled:
        return [obj]
    import torch.distributed as dist

    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank."""
    if not ctx.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_buffers(module: torch.nn.Module, ctx: DistContext, src: int = 0) -> None:
    """Copy ``src``'s buffers (BatchNorm running stats) to every rank.

    DDP only syncs buffers at the start of each forward, so after the last step the ranks' running
    statistics differ; this makes the final models identical everywhere.
    """
    if not ctx.enabled:
        return
    import torch.distributed as dist

    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=src)
