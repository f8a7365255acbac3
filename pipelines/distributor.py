"""Run shard plans: in this process (``serial``) or as one Ray task per shard (``ray``).

Ray runs on a local instance by default and joins a cluster when ``RAY_ADDRESS`` is set
(then this project's packages travel to the workers as ``py_modules``; the raw root and
output directory must be on storage every node sees: a shared file system, or an object store
given as ``--out s3://…``, which every node reaches with its own credentials). At most
``2 x CPUs`` shard tasks are in flight, and the plans are taken from ``plans`` (an iterable: the build reads
each shard's jobs back from its plan spools as it is taken, ``pipelines.plan``) only as tasks are submitted, so the
driver's memory stays bounded however many shards there are. ``--workers N`` is the number of CPUs of a local Ray; on a cluster it caps
the shard tasks running at once at N (the cluster's size is the cluster's).

A shard task that fails as a whole (a write error; under Ray also a worker process that died, after one retry) does
not stop the others: its stats say ``failed`` and carry an ``internal_error`` reject per job
(:func:`pipelines.worker.failed_shard`), and the build fails once everything else is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pipelines.worker import ShardPlan, WorkerEnv, build_shard, failed_shard

Done = Callable[[ShardPlan, dict[str, Any]], None]


def run_serial(plans: Iterable[ShardPlan], env: WorkerEnv, done: Done) -> None:
    for plan in plans:
        try:
            stats = build_shard(plan, env)
        except Exception as exc:
            stats = failed_shard(plan, exc)
        done(plan, stats)


def run_ray(plans: Iterable[ShardPlan], env: WorkerEnv, done: Done, workers: int | None = None) -> None:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started_here = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            import pipelines
            import shards_spec

            ray.init(address=address, runtime_env={"py_modules": [pipelines, shards_spec]}, log_to_driver=True)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=True)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(build_shard)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        max_in_flight = max(1, 2 * cpus)
        if workers and os.environ.get("RAY_ADDRESS"):
            max_in_flight = min(max_in_flight, workers)
        env_ref = ray.put(env)
        pending: dict[Any, ShardPlan] = {}
        queue: Iterator[ShardPlan] = iter(plans)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < max_in_flight:
                plan = next(queue, None)
                if plan is None:
                    exhausted = True
                    break
                pending[remote.remote(plan, env_ref)] = plan
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                plan = pending.pop(ref)
                try:
                    stats = ray.get(ref)
                except Exception as exc:  # RayTaskError (an exception in the task), WorkerCrashedError …
                    stats = failed_shard(plan, exc)
                done(plan, stats)
    finally:
        if started_here:
            ray.shutdown()
