"""The ``modelatlas`` command: one sub-command per job.

Each room registers its commands from a module in :mod:`modelatlas.commands`; heavy imports stay
inside the command functions so that ``modelatlas --help`` is instant.

Every failure ends in one line on standard error and an exit status (docs/reliability.md,
"Command line"): 2 for input the user can fix, 3 for the machine (disk, permissions, a busy
atlas), 130 when interrupted. :func:`_guarded` turns what a command raises into those errors.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys

import typer

from modelatlas.errors import (
    HostError,
    InputError,
    Interrupted,
    MissingDependencyError,
    ModelAtlasError,
    StoreError,
)

app = typer.Typer(
    name="modelatlas",
    help="Chart the Model Atlas: the graph of machine-learning models, from metadata and from weights.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def _root() -> None:
    """Chart the Model Atlas: the graph of machine-learning models, from metadata and from weights."""


#: Modules under modelatlas.commands, each with ``register(app)``.
COMMAND_MODULES = (
    "atlas",
    "ingest",
    "synth",
    "weights",
    "zoo",
    "chart",
    "ecosystem",
    "viz",
    "science",
    "identify",
)

#: Command options that name the file a command works on (for messages that have no file of their own).
_FILE_OPTIONS = ("atlas", "atlas_path", "out", "path")


def _as_user_error(exc: BaseException, where) -> ModelAtlasError | None:
    """The :class:`ModelAtlasError` for an exception a command let through; ``None`` for a bug."""
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted(where)
    if isinstance(exc, EOFError):  # click would print only "Aborted!"
        return InputError(f"input ended early ({exc})", path=str(where) if where else None)
    if isinstance(exc, ModuleNotFoundError):
        return MissingDependencyError.from_import_error(exc)
    if isinstance(exc, MemoryError):
        return HostError(f"{where or 'modelatlas'}: out of memory")
    if isinstance(exc, OSError):
        name = exc.filename if exc.filename is not None else where
        return HostError(f"{name or 'modelatlas'}: {exc.strerror or exc}")
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.Error):
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, duckdb.InterruptException):
            return Interrupted(where)
        host = (duckdb.IOException, duckdb.OutOfMemoryException, duckdb.PermissionException)
        return (HostError if isinstance(exc, host) else StoreError)(f"{where or 'DuckDB'}: {line}")
    return None


def _guarded(command):
    """``command`` with Ctrl-C, OS and DuckDB errors turned into one-line errors (module docstring)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        where = next((kwargs[k] for k in _FILE_OPTIONS if kwargs.get(k) is not None), None)
        try:
            return command(*args, **kwargs)
        except ModelAtlasError:
            raise
        except (KeyboardInterrupt, Exception) as exc:
            error = _as_user_error(exc, where)
            if error is None:
                raise
            raise error from None

    return run


def _guard_all(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        info.callback = _guarded(info.callback)
    for group in typer_app.registered_groups:
        _guard_all(group.typer_instance)


for _name in COMMAND_MODULES:
    importlib.import_module(f"modelatlas.commands.{_name}").register(app)
_guard_all(app)


def _one_line(text: str) -> str:
    """``text`` on one line, control characters escaped (a name from a file must not drive the terminal)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(text.split("\n")))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a failure prints one line and returns its exit status (module docstring)."""
    try:
        app(args=argv)  # exits through SystemExit with click's status
    except ModelAtlasError as exc:
        message = "error: " + _one_line(str(exc)) if not isinstance(exc, Interrupted) else _one_line(str(exc))
        if os.environ.get("NO_COLOR"):
            typer.echo(message, err=True)
        else:
            typer.secho(message, err=True, fg=typer.colors.RED)
        return exc.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
