"""The ``modelatlas`` command: one sub-command per job.

Each room registers its commands from a module in :mod:`modelatlas.commands`; heavy imports stay
inside the command functions so that ``modelatlas --help`` is instant.

Every failure ends in one line on standard error and an exit status (docs/reliability.md,
"Command line"): 2 for input the user can fix, 3 for the machine (disk, permissions, a busy
atlas), 130 when interrupted. :func:`_guarded` turns what a command raises into those errors;
:func:`main` prints them, and the option parser's usage errors, as one line. Results go to standard
output, everything else to standard error (docs/cli.md; :mod:`modelatlas.commands.output`).
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Annotated

import typer

from modelatlas.commands.output import colour_off, printable, set_colour
from modelatlas.errors import (
    HostError,
    InputError,
    Interrupted,
    MissingDependencyError,
    ModelAtlasError,
    StoreError,
)

try:  # recent typer carries its own copy of click; older releases use click itself
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_errors
#: click >= 8.2 raises this for a group called without a sub-command (its help, then status 2).
_NO_ARGS_IS_HELP = getattr(_click_errors, "NoArgsIsHelpError", ())

app = typer.Typer(
    name="modelatlas",
    help="Chart the Model Atlas: the graph of machine-learning models, from metadata and from weights.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from modelatlas import __version__

        typer.echo(f"modelatlas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the installed version and exit.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour on any output (as NO_COLOR=1 does).")]
    = False,
) -> None:
    """Chart the Model Atlas: the graph of machine-learning models, from metadata and from weights.

    Results go to standard output (a table on a terminal, tab-separated when piped; --format json
    or --json for machines), progress and errors to standard error (docs/cli.md).
    """
    set_colour(not no_color)


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
    if isinstance(exc, BrokenPipeError):  # the reader of standard output left (| head): click exits quietly
        return None
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
    return printable(" ".join(text.split("\n")))


def _print_error(message: str) -> None:
    """``message`` on standard error, red on a terminal unless colour is off (NO_COLOR, --no-color)."""
    if colour_off() or not sys.stderr.isatty():
        sys.stderr.write(message + "\n")
    else:
        typer.secho(message, err=True, fg=typer.colors.RED)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a failure prints one line and returns its exit status (module docstring)."""
    set_colour(True)  # --no-color of an earlier call in the same process does not carry over
    try:
        status = app(args=argv, standalone_mode=False)
    except ModelAtlasError as exc:
        message = "error: " + _one_line(str(exc)) if not isinstance(exc, Interrupted) else _one_line(str(exc))
        _print_error(message)
        return exc.exit_status
    except _NO_ARGS_IS_HELP as exc:  # a group given no sub-command: its help
        exc.show()
        return exc.exit_code
    except _click_errors.ClickException as exc:  # a usage error: one line too, with click's status (2)
        where = f" (see '{exc.ctx.command_path} --help')" if getattr(exc, "ctx", None) is not None else ""
        _print_error("error: " + _one_line(exc.format_message()) + where)
        return exc.exit_code
    except typer.Abort:
        _print_error(_one_line(str(Interrupted(None))))
        return Interrupted(None).exit_status
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
