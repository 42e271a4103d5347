"""Errors that reach users. Each names the file, model or field it is about."""

from __future__ import annotations


class ModelAtlasError(Exception):
    """Base class of every error the command line prints as a plain message (no traceback)."""


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
        # names come from files: a newline or other control character in one must not break the line
        path, where = _printable(path), _printable(where)
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
    """An atlas store that is missing, locked or not an atlas."""
