"""The command-line options that choose an engine (``--engine``, ``--address``, ...), shared by
``fingerprint`` and ``chart`` (``docs/scale.md``)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

EngineOpt = Annotated[str, typer.Option("--engine", help="Where the work runs: local (this process) or ray "
                                        "(a Ray cluster: --address, else a private one on this machine).")]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="Ray cluster to join (HOST:PORT of its "
                                                   "head, ray://HOST:PORT, or auto); with --engine ray.")]
FallbackOpt = Annotated[bool, typer.Option("--fallback-local", help="With --engine ray: run in this process "
                                           "when the cluster cannot be reached (default: fail, exit 3).")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", help="Workers of the private Ray cluster "
                                                   "started without --address (default: every CPU).")]


def executor_from_options(engine: str, address: str | None, fallback_local: bool, workers: int | None):
    """The executor the options ask for; a fallback is announced on standard error.

    Raises
    ------
    InputError
        Inconsistent options (exit 2).
    HostError
        The Ray cluster cannot be reached and ``--fallback-local`` was not given (exit 3).
    """
    from modelatlas.engine.executor import open_executor
    from modelatlas.errors import InputError

    if workers is not None and (engine != "ray" or address is not None):
        raise InputError("--workers sizes the private Ray cluster: give it with --engine ray and no --address",
                         where="--workers")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}", where="--workers")

    def warn(message: str) -> None:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[yellow]note:[/] {escape(message)}", highlight=False)

    return open_executor(engine, address, num_cpus=workers, fallback_local=fallback_local, warn=warn)
