"""Data-parallel training across processes: what ``Model.fit`` does when ``torchrun`` started it.

``torchrun --nproc-per-node N script.py`` starts N copies of a script and tells each its place
through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``). ``fit`` reads them and then, with no change to the script:

- joins the process group (``gloo`` on the CPU, ``nccl`` on GPUs) with a timeout, so that a
  process that dies or hangs makes the others fail with :class:`DistributedError` instead of
  waiting forever;
- shards the training samples with ``torch.utils.data.DistributedSampler``: ``batch_size`` is per
  process, so one step sees ``batch_size * world_size`` samples (the global batch);
- wraps the network in ``DistributedDataParallel``, which averages the gradients, so every
  process takes the same step and ends with the same weights;
- sums the epoch's loss and metrics over processes (training and validation), so every process
  logs and decides (early stopping, learning-rate schedules) on the same numbers;
- writes progress bars, log lines and checkpoints from rank 0 only.

>>> launch_info() is None   # not started by torchrun
True
>>> rank(), world_size(), is_main_process()
(0, 1, True)
"""

from __future__ import annotations

import datetime
import logging
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

logger = logging.getLogger("lstmkit.models")

#: Seconds a process waits for the others in one collective before failing (``LSTMKIT_DIST_TIMEOUT``).
DEFAULT_TIMEOUT = 300.0


class DistributedError(RuntimeError):
    """Another training process died, hung past the timeout, or could not be reached."""


@dataclass(frozen=True)
class LaunchInfo:
    """Where this process stands in a ``torchrun`` launch."""

    rank: int  # this process, 0 .. world_size - 1
    world_size: int  # how many processes train together
    local_rank: int  # this process on its machine (picks the GPU)


def launch_info() -> LaunchInfo | None:
    """The launch ``torchrun`` described in the environment, or None for a plain process."""
    env = os.environ
    if "WORLD_SIZE" not in env or "RANK" not in env or "MASTER_ADDR" not in env:
        return None
    try:
        return LaunchInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", env["RANK"])))
    except ValueError:
        raise ValueError(f"fit: the torchrun variables are not integers: RANK={env['RANK']!r}, "
                         f"WORLD_SIZE={env['WORLD_SIZE']!r}. Launch with torchrun (or `lstmkit train --nproc N`).")


def active() -> bool:
    """Whether a process group is up (``fit`` under ``torchrun``, or set up by the caller)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in a plain process): the one that logs and writes files."""
    return rank() == 0


def _timeout_seconds(timeout: float | None) -> float:
    if timeout is not None:
        return float(timeout)
    raw = os.environ.get("LSTMKIT_DIST_TIMEOUT")
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"LSTMKIT_DIST_TIMEOUT must be a number of seconds, got {raw!r}.") from None
    if value <= 0:
        raise ValueError(f"LSTMKIT_DIST_TIMEOUT must be > 0 seconds, got {value}.")
    return value


def init_distributed(timeout: float | None = None, backend: str | None = None) -> LaunchInfo | None:
    """Join the process group ``torchrun`` set up; a no-op in a plain process or when already joined.

    Args:
        timeout: seconds a collective waits for the other processes before failing (default
            ``LSTMKIT_DIST_TIMEOUT`` or 300). Keep it above the longest gap between two steps
            (a checkpoint write, a validation pass).
        backend: ``"gloo"`` or ``"nccl"``; by default nccl when CUDA is available, else gloo.
    """
    info = launch_info()
    if info is None or active():
        return info
    seconds = _timeout_seconds(timeout)
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=seconds))
    if info.rank != 0:
        # Children of "lstmkit" inherit its level: the other ranks stay quiet unless something is wrong.
        logging.getLogger("lstmkit").setLevel(logging.WARNING)
    logger.info("distributed: %d processes, backend %s, timeout %gs", info.world_size, backend, seconds)
    return info


def device_for_rank() -> torch.device:
    """The device this process trains on: its GPU under nccl, else the CPU."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextmanager
def collective_guard(where: str):
    """Turn a failed or timed-out collective into a :class:`DistributedError` that says what happened."""
    try:
        yield
    except DistributedError:
        raise
    except RuntimeError as err:  # DistBackendError and gloo's errors are RuntimeErrors
        if not active():
            raise
        seconds = _timeout_seconds(None)
        raise DistributedError(
            f"fit: rank {rank()} of {world_size()} lost the other training processes at {where}: another "
            f"process died, or did not answer within the timeout ({seconds:g}s, LSTMKIT_DIST_TIMEOUT). "
            f"The job stops here; checkpoints written so far are complete (written atomically) and "
            f"fit(..., resume_from=...) continues from the last one. Cause: {str(err).splitlines()[0][:300]}"
        ) from err


def _reduce_device() -> torch.device:
    return device_for_rank()


def all_reduce_sum(values: list[float], where: str) -> list[float]:
    """Sum each number over all processes (float64)."""
    if not active() or world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_reduce_device())
    with collective_guard(where):
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def broadcast_int(value: int, where: str) -> int:
    """Rank 0's ``value`` on every process."""
    if not active() or world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=_reduce_device())
    with collective_guard(where):
        dist.broadcast(t, src=0)
    return int(t.item())


class ShardedBatches:
    """This process's share of in-memory ``(x, y)``, in per-process batches of ``batch_size``.

    Training (``pad=True``): ``DistributedSampler`` order: every process draws the same
    permutation (seeded with ``seed + epoch``), pads it by repeating its first samples to a
    multiple of the number of processes, and takes every ``world_size``-th sample from its rank
    on. So batch k of all processes together is batch k of a one-process run with batch size
    ``batch_size * world_size`` over the same permutation, and all processes take the same number
    of steps (DDP needs that). Evaluation (``pad=False``): rank r takes samples r, r + W, ...,
    with no repeats, so sums over processes count each sample once.
    """

    def __init__(self, inner, *, seed: int, pad: bool):
        from torch.utils.data import DistributedSampler

        self.x, self.y, self.batch_size = inner.x, inner.y, inner.batch_size
        self.n = inner.n
        self.pad = pad
        self.world, self.rank = world_size(), rank()
        self.sampler = DistributedSampler(range(self.n), num_replicas=self.world, rank=self.rank, seed=seed,
                                          drop_last=False) if pad else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self, shuffle: bool) -> list[int]:
        if self.sampler is None:
            return list(range(self.rank, self.n, self.world))
        self.sampler.shuffle = bool(shuffle)
        self.sampler.set_epoch(self.epoch)
        return list(iter(self.sampler))

    def __len__(self) -> int:
        per_rank = math.ceil(self.n / self.world) if self.pad else len(range(self.rank, self.n, self.world))
        return math.ceil(per_rank / self.batch_size)

    def iterate(self, shuffle: bool):
        idx = torch.tensor(self._indices(shuffle), dtype=torch.long)
        for start in range(0, len(idx), self.batch_size):
            take = idx[start:start + self.batch_size]
            yield self.x[take], (None if self.y is None else self.y[take])


class LoaderShard:
    """A DataLoader whose sampler is a ``DistributedSampler``: ``fit`` sets its epoch each epoch."""

    def __init__(self, inner):
        self.inner = inner
        self.sampler = inner.loader.sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def iterate(self, shuffle: bool = False):
        return self.inner.iterate(shuffle)


def shard_loader(inner, owner: str):
    from torch.utils.data import DistributedSampler

    if not isinstance(inner.loader.sampler, DistributedSampler):
        raise ValueError(
            f"{owner}: under torchrun a DataLoader must give each process its own samples: build it with "
            "`sampler=torch.utils.data.DistributedSampler(dataset)` (per-process batch_size), or pass arrays "
            "and fit shards them itself.")
    return LoaderShard(inner)


class _RunAdapter(torch.nn.Module):
    """What DDP wraps: the model's ``_run`` (output and mask), so masks reach the loss as without DDP."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model._run(x)


def wrap(model) -> torch.nn.Module:
    """``DistributedDataParallel`` around ``model._run``; it starts from rank 0's weights."""
    from torch.nn.parallel import DistributedDataParallel

    device = device_for_rank()
    kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
    with collective_guard("the start of training (DistributedDataParallel broadcasts rank 0's weights)"):
        return DistributedDataParallel(_RunAdapter(model), **kwargs)
