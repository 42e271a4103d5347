"""Errors that reach users. Each names the file, model or field it is about."""

from __future__ import annotations


class ModelAtlasError(Exception):
    """Base class of every error the command line prints as a plain message (no traceback).

    ``exit_status`` is the command line's exit status for it (docs/reliability.md, "Command line"):
    2 for input the user can fix, 3 for the machine (:class:`HostError`).
    """

    exit_status = 2


class InputError(ModelAtlasError):
    """A file or record that cannot be read as asked.

    Parameters
    ----------
    message:
        What is wrong, in words a user can act on.
    path:
        The file concerned, if any.
    where:
        A line number, model id, tensor or field name inside the file, if known.
    """

    def __init__(self, message: str, *, path: str | None = None, where: str | None = None):
        self.path = path
        self.where = where
        # names come from files, in the message too: a newline or other control character in one
        # must not break the line
        path, where, message = _printable(path), _printable(where), _printable(message)
        prefix = ""
        if path:
            prefix = f"{path}"
            if where:
                prefix += f" ({where})"
            prefix += ": "
        elif where:
            prefix = f"{where}: "
        super().__init__(prefix + message)


def _printable(text: object) -> str | None:
    if text is None:
        return None
    text = text if isinstance(text, str) else repr(text)  # e.g. a name a parser left as bytes
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


#: Optional modules and the extra of ``pyproject.toml`` that installs each (docs/architecture.md).
OPTIONAL_EXTRAS = {"fastapi": "web", "uvicorn": "web", "starlette": "web", "matplotlib": "figures",
                   "pandas": "dataframes", "torch": "torch"}


class MissingDependencyError(ModelAtlasError):
    """An optional dependency that the asked-for work needs is not installed.

    Parameters
    ----------
    module:
        The missing top-level module.
    extra:
        The extra that installs it (``pip install 'modelatlas[EXTRA]'``).
    """

    def __init__(self, module: str, extra: str):
        self.module, self.extra = module, extra
        super().__init__(f"this needs {module}, which is not installed: pip install 'modelatlas[{extra}]'")

    @classmethod
    def from_import_error(cls, exc: ModuleNotFoundError) -> MissingDependencyError | None:
        """The error for ``exc`` when it is about an optional module; ``None`` otherwise (a bug)."""
        module = (exc.name or "").split(".")[0]
        return cls(module, OPTIONAL_EXTRAS[module]) if module in OPTIONAL_EXTRAS else None


class UnknownModelError(ModelAtlasError):
    """A model id that is not in the atlas; suggests close matches."""

    def __init__(self, model_id: str, suggestions: list[str] | None = None):
        self.model_id = model_id
        self.suggestions = list(suggestions or [])
        msg = f"model {model_id!r} is not in the atlas"
        if self.suggestions:
            msg += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(msg)


class StoreError(ModelAtlasError):
    """An atlas store that is missing, damaged or not an atlas."""


class HostError(ModelAtlasError):
    """The machine, not the input, stopped the work: a full disk, a permission, a busy lock.

    Exit status 3 (docs/reliability.md, "Command line").
    """

    exit_status = 3


class AtlasBusyError(HostError):
    """Another process holds the writer lock of an atlas file."""


class Interrupted(ModelAtlasError):
    """The user stopped the command (Ctrl-C); exit status 130. Files being written are left as they were.

    Parameters
    ----------
    path:
        The atlas or output file the command was working on, if known.
    """

    exit_status = 130

    def __init__(self, path=None):
        self.path = path
        what = f"{path} was left as it was before this command" if path else "files were left as they were"
        super().__init__(f"interrupted; {what}")


class HubError(InputError):
    """The live Hub (or the server ``HF_ENDPOINT`` names) could not be read as asked: refused,
    unreachable, too slow, looping or answering something else than a model list. ``path`` is the URL."""

    def __init__(self, message: str, *, path: str | None = None, where: str | None = None):
        self.detail = message  # without the URL prefix, so a caller can extend it
        super().__init__(message, path=path, where=where)
