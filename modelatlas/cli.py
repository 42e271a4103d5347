"""The ``modelatlas`` command: one sub-command per job.

Each room registers its commands from a module in :mod:`modelatlas.commands`; heavy imports stay
inside the command functions so that ``modelatlas --help`` is instant.
"""

from __future__ import annotations

import importlib
import sys

import typer

from modelatlas.errors import ModelAtlasError

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

for _name in COMMAND_MODULES:
    importlib.import_module(f"modelatlas.commands.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; user errors print one line and exit with status 2."""
    try:
        app(args=argv)  # exits through SystemExit with click's status
    except ModelAtlasError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
