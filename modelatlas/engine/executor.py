"""Executors: run independent tasks in this process or as Ray tasks, yielding results as they finish.

A task is a module-level function applied to one picklable item. :meth:`Executor.map_unordered`
yields ``(index, result)`` pairs in completion order; a task that raised, or whose worker died
more often than Ray's retries allow, yields a :class:`TaskFailure` instead of stopping the run
(the caller records it; ``docs/scale.md``, "Bad input"). At most ``max_in_flight`` tasks are
submitted at once, so a killed run loses only those and the driver's memory stays bounded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from modelatlas.errors import HostError, InputError

#: Times Ray re-runs a task whose worker process died (system failures; not exceptions).
MAX_RETRIES = 2
#: Seconds to wait for a cluster's head to answer (``ray.init`` itself retries for minutes).
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class TaskFailure:
    """A task that did not return: the exception's class name and message, and the exception
    itself when the task raised one (None when its worker died)."""

    kind: str
    message: str
    error: BaseException | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class Executor:
    """Runs ``fn(item)`` for every item; see the module docstring."""

    name = "abstract"
    #: Tasks that run at the same time.
    workers = 1

    def map_unordered(self, fn: Callable, items: Sequence, *, max_in_flight: int | None = None
                      ) -> Iterator[tuple[int, object]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the executor's resources (a Ray connection this executor opened)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """Tasks one after the other in this process (the default engine)."""

    name = "local"

    def map_unordered(self, fn, items, *, max_in_flight=None):
        for i, item in enumerate(items):
            try:
                result = fn(item)
            except Exception as exc:  # noqa: BLE001 -- a failed task is a result; Ctrl-C still stops
                result = TaskFailure(exc.__class__.__name__, str(exc), exc)
            yield i, result


class RayExecutor(Executor):
    """Tasks as Ray tasks (one CPU each) on a local or remote Ray cluster.

    Parameters
    ----------
    address:
        A running cluster (``HOST:PORT`` of its head, ``ray://HOST:PORT`` for Ray Client, or
        ``auto``); None starts a private local cluster of ``num_cpus`` workers.
    num_cpus:
        Workers of a private local cluster (default: the CPUs Ray sees).
    max_retries:
        Re-runs of a task whose worker died (Ray's ``max_retries``).

    Raises
    ------
    HostError
        When the cluster cannot be reached (exit status 3), in one line naming the address.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 max_retries: int = MAX_RETRIES):
        try:
            import ray
        except ImportError:
            raise InputError("--engine ray needs Ray: pip install 'modelatlas[ray]'") from None
        self._ray = ray
        self.max_retries = max_retries
        self._owned = not ray.is_initialized()
        if self._owned:
            os.environ.setdefault("RAY_DEDUP_LOGS", "0")
            kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                if address is None:
                    ray.init(address="local", num_cpus=num_cpus, **kwargs)  # never an existing cluster
                else:
                    _probe(address)
                    ray.init(address=address, **kwargs)
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 -- Ray raises ConnectionError, RuntimeError, ValueError...
                hint = ""
                if _needs_token(exc):
                    hint = ("; the cluster asks for its token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                            "(`ray get-auth-token` on its head)")
                raise HostError(f"cannot reach the Ray cluster at {address or 'a new local cluster'} "
                                f"({exc.__class__.__name__}: {_first_line(exc)}){hint}") from None
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map_unordered(self, fn, items, *, max_in_flight=None):
        ray = self._ray
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(fn)
        limit = max_in_flight or 2 * self.workers
        pending: dict = {}
        queue = iter(enumerate(items))
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < limit:
                nxt = next(queue, None)
                if nxt is None:
                    exhausted = True
                    break
                pending[remote.remote(nxt[1])] = nxt[0]
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the task raised
                    cause = exc.cause if exc.cause is not None else exc
                    result = TaskFailure(cause.__class__.__name__, _first_line(cause),
                                         cause if isinstance(cause, Exception) else None)
                except ray.exceptions.RayError as exc:  # its worker died max_retries + 1 times, ...
                    result = TaskFailure(exc.__class__.__name__, _first_line(exc))
                yield index, result

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def _probe(address: str) -> None:
    """Fail within :data:`CONNECT_TIMEOUT` when a ``HOST:PORT`` head does not accept connections
    (``ray.init`` would retry for minutes); ``auto`` is left to Ray, which fails at once."""
    import socket

    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        if address == "auto":
            return
        raise InputError(f"--address {address!r} is not HOST:PORT, ray://HOST:PORT or auto", where="--address")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ConnectionError(f"no answer from {hostport} within {CONNECT_TIMEOUT:.0f} s "
                              f"({exc.strerror or exc.__class__.__name__})") from None


def _needs_token(exc: BaseException) -> bool:
    """Whether Ray refused the connection for a missing or wrong token (token authentication)."""
    seen = 0
    while exc is not None and seen < 10:  # a bounded walk down the cause chain
        if "AuthToken" in str(exc) or exc.__class__.__name__ == "AuthenticationError":
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def open_executor(engine: str = "local", address: str | None = None, *, num_cpus: int | None = None,
                  fallback_local: bool = False, warn: Callable[[str], None] | None = None) -> Executor:
    """The executor the command line's ``--engine`` / ``--address`` / ``--fallback-local`` ask for.

    Parameters
    ----------
    engine:
        ``local`` or ``ray``.
    address:
        The Ray cluster (``--address``); only with ``engine="ray"``.
    num_cpus:
        Workers of a private local Ray cluster.
    fallback_local:
        When the cluster cannot be reached, run in this process instead of failing (``warn`` is
        told why).

    Raises
    ------
    InputError
        An unknown engine, or ``--address`` without ``--engine ray``.
    HostError
        The cluster cannot be reached and no fallback was asked for.
    """
    if engine not in ("local", "ray"):
        raise InputError(f"--engine must be local or ray, not {engine!r}", where="--engine")
    if engine == "local":
        if address is not None:
            raise InputError("--address names a Ray cluster: give it with --engine ray", where="--address")
        return LocalExecutor()
    try:
        return RayExecutor(address, num_cpus=num_cpus)
    except HostError as exc:
        if not fallback_local:
            raise
        if warn is not None:
            warn(f"{exc}; running in this process (--fallback-local)")
        return LocalExecutor()
