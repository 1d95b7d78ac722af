"""How a study's runs are executed: one after another in this process, or as Ray tasks.

The runner plans the runs and reuses the finished ones (same content keys); an executor gets the
runs still to do and calls ``on_done(spec, record, computed)`` as each one is stored. Either way a
run is computed by :func:`compute_run` under the run's lock and stored atomically by the process
that computed it, so a run is recorded once, and a process killed mid-run leaves nothing
half-written.

- ``sequential``: this process; a run locked by another process is waited for at the end. Under
  ``accelerate launch`` every process takes part in every run (``safeadapt.distributed``) and
  the main process stores it.
- ``ray`` (``pip install safeadapt[ray]``): the frozen features of every split are extracted once
  before the fan-out, by one Ray task with the study's resources (the feature cache is on disk,
  keyed on content: on a multi-node cluster put it and the output on a shared filesystem with
  ``SAFEADAPT_HOME`` and ``output``); the task is put once in the object store; each run is a
  Ray task with the study's ``num_cpus`` / ``num_gpus`` (or its protocol's) and ``max_retries``:
  a task whose worker dies is run again, and a retried task whose first attempt had finished
  returns the stored record instead of computing it twice.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from urllib.parse import urlparse

from safeadapt import distributed
from safeadapt.errors import InvalidConfig, SafeAdaptError
from safeadapt.results import RunRecord
from safeadapt.study.specs import EXECUTORS
from safeadapt.study.store import RunStore

CONNECT_SECONDS = 5.0


def finished(config, store: RunStore, spec) -> RunRecord | None:
    """The stored record of ``spec``, unless ``save_models`` asks for a model the run did not
    keep (then it is redone)."""
    record = store.load(spec)
    if record is not None and config.save_models and not store.has_model(spec):
        return None
    if record is not None:
        from safeadapt.study.evidence import record_agrees

        wrong = record_agrees(record, store.load_predictions(spec))
        if wrong:  # an edited record is not evidence: the run is redone
            logging.getLogger(__name__).warning("run record %s disagrees with its predictions (%s); the run is redone",
                        store.folder(spec) / "record.json", wrong)  # fmt: skip
            return None
    return record


def compute_run(config, spec, task, cache, show_progress: bool = False) -> RunRecord:
    """Fit and evaluate one run and store it atomically; returns the stored record."""
    from safeadapt.protocols import make_protocol
    from safeadapt.run import environment, run_protocol

    store = RunStore(config.output_dir)
    record, result = run_protocol(
        make_protocol(spec.protocol, spec.settings),
        task,
        config.backbone.factory(task.modality),
        spec.seed,
        cache=cache,
        safety=config.safety,
        show_progress=show_progress,
    )
    record = record.stored(spec.run_key(), {**environment(), **distributed.describe()})
    if not distributed.is_main():  # under a launcher the main process stores the run
        return record
    store.save(
        record,
        model=result.model if config.save_models else None,
        predictions=record.predictions,
    )
    return store.load(spec) or record


@EXECUTORS.register("sequential")
def run_sequential(config, todo, task, cache, *, on_done, log, show_progress) -> None:
    from safeadapt.progress import progress

    store = RunStore(config.output_dir)
    if distributed.launched():  # the processes run together: no per-run race between them
        for spec in progress(todo, "study runs", show_progress, total=len(todo)):
            log(f"run {spec.run_id} on {distributed.world_size()} processes")
            lock = (
                store.lock(spec, wait=True) if distributed.is_main() else contextlib.nullcontext()
            )
            with lock:
                on_done(spec, compute_run(config, spec, task, cache, show_progress), True)
        return
    busy = []
    for spec in progress(todo, "study runs", show_progress, total=len(todo)):
        with store.lock(spec, wait=False) as mine:
            if not mine:  # another process is computing it: come back at the end
                log(f"run {spec.run_id} is being computed by another process; waiting for it")
                busy.append(spec)
                continue
            _locked_run(config, spec, task, cache, store, on_done, log, show_progress)
    for spec in busy:
        with store.lock(spec, wait=True):
            _locked_run(config, spec, task, cache, store, on_done, log, show_progress)


def _locked_run(config, spec, task, cache, store, on_done, log, show_progress) -> None:
    stored = finished(config, store, spec)  # it may have finished while we waited
    if stored is not None:
        on_done(spec, stored, False)
        return
    log(f"run {spec.run_id}")
    on_done(spec, compute_run(config, spec, task, cache, show_progress), True)


@EXECUTORS.register("ray")
def run_ray(config, todo, task, cache, *, on_done, log, show_progress) -> None:
    if not todo:
        return
    ray = _import_ray()
    started = connect(ray, config.executor.address, log)
    try:
        task_ref = ray.put(task)
        # the features, once, on a worker with the study's resources (a GPU where runs get one)
        log(f"feature cache: every split's features under {cache.root}")
        from safeadapt.trust import ENV, code_allowed

        # code the input names may run on the workers only as it may here
        runtime = {"runtime_env": {"env_vars": {ENV: "1"}}} if code_allowed() else {}
        warm = ray.remote(prewarm).options(
            **runtime,
            name="features",
            num_cpus=config.executor.num_cpus,
            num_gpus=config.executor.num_gpus,
            max_retries=config.executor.max_retries,
        )
        try:
            ray.get(warm.remote(config, task_ref, str(cache.root)))
        except ray.exceptions.RayError as err:
            _raise_failures([("features (before the runs)", _cause(err))])
        remote = ray.remote(_ray_task)
        pending = {}
        for spec in todo:
            options = {
                **runtime,
                "name": f"run {spec.run_id}",
                **config.executor.resources_for(spec.label),
                "max_retries": config.executor.max_retries,
                "retry_exceptions": False,  # a run that raises is a bug or bad input: no retry
            }
            ref = remote.options(**options).remote(config, spec, task_ref, str(cache.root))
            pending[ref] = spec
        log(f"ray: {len(pending)} runs submitted")
        failures: list[tuple[str, BaseException]] = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    record, computed = ray.get(ref)
                except ray.exceptions.RayError as err:  # raised, or the worker died too often
                    failures.append((f"run {spec.run_id}", _cause(err)))
                    continue
                log(f"run {spec.run_id} {'done' if computed else 'was already stored'}")
                on_done(spec, record, computed)
    finally:
        if started:
            ray.shutdown()
    if failures:
        _raise_failures(failures)


def _cause(err: BaseException) -> BaseException:
    """The exception a Ray task raised, or Ray's own error (a worker that died)."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err


def _raise_failures(failures: list[tuple[str, BaseException]]) -> None:
    what, err = failures[0]
    others = f" (and {len(failures) - 1} more runs)" if len(failures) > 1 else ""
    if isinstance(err, SafeAdaptError):
        raise type(err)(f"{what}{others}: {err}") from err
    raise SafeAdaptError(
        f"{what}{others} failed on Ray: {str(err).strip().splitlines()[-1][:300]}. Finished "
        "runs are stored; fix the cause and run the study again to do the rest."
    ) from err


def _ray_task(config, spec, task, cache_root: str) -> tuple[RunRecord, bool]:
    """One run on a Ray worker: under the run's lock, the stored record when an earlier attempt
    finished it, else computed and stored."""
    from safeadapt.data.features import FeatureCache

    store = RunStore(config.output_dir)
    with store.lock(spec, wait=True):
        stored = finished(config, store, spec)
        if stored is not None:
            return stored, False
        return compute_run(config, spec, task, FeatureCache(cache_root)), True


def prewarm(config, task, cache_root: str) -> None:
    """Extract every split's frozen features once, before the fan-out (the LP family and the
    safety families read them from the cache)."""
    from safeadapt.data.features import FeatureCache

    cache = FeatureCache(cache_root)
    backbone = config.backbone.factory(task.modality)()
    for split in task.splits(far=True).values():
        if len(split):
            cache.get(backbone, split, show_progress=False)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InvalidConfig(
            "executor 'ray' needs Ray: `pip install safeadapt[ray]` (or `pip install ray`), "
            "or run with the default executor (sequential)."
        ) from None
    return ray


def connect(ray, address: str | None, log) -> bool:
    """Join the cluster at ``address`` (``auto``: the running one; ``ray://host:port`` or
    ``host:port``), or start a local one when ``address`` is None. An address that does not
    answer fails within ``CONNECT_SECONDS``. Returns whether this call started Ray (and so
    shuts it down)."""
    if ray.is_initialized():  # the caller's own cluster (a notebook, a test, a Ray job)
        return False
    if address and address != "auto":
        _probe(address)
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise InvalidConfig(
            f"executor 'ray': could not connect to {address or 'a local cluster'}: "
            f"{str(err).strip().splitlines()[0][:200]}. Start one with `ray start --head`, "
            "pass --address, or leave it out to start a local cluster."
        ) from None
    log(f"ray: connected to {address or 'a new local cluster'}")
    return True


def _probe(address: str) -> None:
    url = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = url.hostname, url.port or (10001 if url.scheme == "ray" else 6379)
    if not host:
        raise InvalidConfig(f"executor 'ray': cannot read host and port from {address!r}.")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
            pass
    except OSError as err:
        raise InvalidConfig(
            f"executor 'ray': nothing answers at {host}:{port} ({err.strerror or err}) within "
            f"{CONNECT_SECONDS:g} s. Check the address (`ray status` on the head node prints it) "
            "or leave it out to start a local cluster."
        ) from None
