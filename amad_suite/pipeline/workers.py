"""Run the seeds of a stage side by side on a CPU (``compute.workers``).

Tiny models do not use a second core: one mini distillation step takes about as long with 2 intra-op threads as
with 1 (benchmarks/threads.py), so on 2 cores two single-threaded processes train two seeds in the time of one.
:func:`run_each` runs ``fn(seed)`` for every seed, either in this process or in ``workers`` spawned processes
with ``cores // workers`` torch threads each. The thread count is part of what a run computes (kernels reduce in
another order), so callers record it and put it in the run's fingerprint.

With an accelerator, or ``workers`` 1, the seeds run one after another in this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


def threads_per_worker(workers: int) -> int:
    """The torch threads each of ``workers`` processes gets: the usable cores split evenly, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def parallel(workers: int) -> bool:
    """Whether seeds run in worker processes: more than one worker and no accelerator."""
    import torch

    return workers > 1 and not torch.cuda.is_available()


def _init_worker(threads: int) -> None:
    import torch

    from amad_suite.cli import setup_logging

    torch.set_num_threads(threads)
    setup_logging()


def run_each(fn: Callable[..., Any], seeds: Sequence[int], workers: int, **kwargs: Any) -> list[Any]:
    """``[fn(seed=s, **kwargs) for s in seeds]``, in ``workers`` processes when :func:`parallel`.

    Every seed runs with :func:`torch_threads` threads whatever the number of seeds still to run, so a seed
    trained alone computes what it computes beside another. ``fn`` must be a module-level function (it is pickled
    by name) that sets up everything it needs from its arguments. An exception in a worker is raised here, so a
    stage still fails with its one-line error.
    """
    if not parallel(workers):
        return [fn(seed=seed, **kwargs) for seed in seeds]
    threads = threads_per_worker(workers)
    if len(seeds) < 2:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return [fn(seed=seed, **kwargs) for seed in seeds]
        finally:
            torch.set_num_threads(before)
    count = min(workers, len(seeds))
    log.info("running seeds %s in %d processes with %d torch threads each", list(seeds), count, threads)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch or HDF5 state
    with ProcessPoolExecutor(count, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(fn, seed=seed, **kwargs) for seed in seeds]
        return [future.result() for future in futures]


def torch_threads(workers: int) -> int:
    """The torch threads a seed of a stage with ``workers`` runs with (what :func:`run_each` sets in a worker)."""
    import torch

    return threads_per_worker(workers) if parallel(workers) else torch.get_num_threads()
