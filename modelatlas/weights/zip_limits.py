"""Bounds on what a zip-format PyTorch checkpoint may inflate to, checked before ``torch.load``.

``torch.save`` stores every member of its zip archive uncompressed (``ZIP_STORED``), so reading one
costs no more memory than the file's size. A hostile archive may instead deflate its ``data.pkl``:
a 6 MB file inflating to 6 GiB took an unguarded reader to 6.6 GB of memory before ``torch.load``
refused it. :func:`check_archive` reads only the central directory and the compressed streams, in
1 MiB steps, and refuses (see ``docs/weights.md``, "Limits"):

- a stored member whose declared size differs from its stored size or runs past the file's end;
- compressed members whose declared sizes add up to more than :data:`MAX_INFLATED_BYTES`, before
  inflating anything;
- a compressed member whose stream inflates to more (or less) than it declares: the stream is
  inflated with a bounded output buffer and counting stops one step past the declared size;
- a pickle member (``*.pkl``, stored or compressed) larger than :data:`MAX_PICKLE_BYTES`;
- compression methods other than deflate (the only one PyTorch's reader knows).
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from pathlib import Path

from modelatlas.errors import InputError

#: Most bytes all compressed members of one archive may inflate to, together (256 MiB).
MAX_INFLATED_BYTES = 256 * 2**20
#: Most bytes of one pickle member: the state dict's structure, not its tensors (256 MiB; the
#: ``data.pkl`` of a state dict of 1,000 tensors holds 119 KiB).
MAX_PICKLE_BYTES = 256 * 2**20
#: Bytes read or inflated per step.
STEP = 2**20

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length


def check_archive(path: str | Path) -> None:
    """Refuse a zip archive whose members could inflate beyond the bounds above.

    Parameters
    ----------
    path:
        A zip-format checkpoint (``zipfile.is_zipfile`` is true).

    Raises
    ------
    InputError
        Naming the file and the member, for each rule of the module docstring, or an unreadable
        archive.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive, open(path, "rb") as fh:
            inflated = 0
            for info in archive.infolist():
                declared = info.file_size
                if info.filename.endswith(".pkl") and declared > MAX_PICKLE_BYTES:
                    raise _refuse(path, info, f"a pickle of {declared} bytes exceeds the {MAX_PICKLE_BYTES}-byte limit")
                if info.compress_type == zipfile.ZIP_STORED:
                    if declared != info.compress_size or info.header_offset + declared > size:
                        raise _refuse(path, info, f"stored member declares {declared} bytes but holds "
                                                  f"{info.compress_size} (or runs past the end of the file)")
                    continue
                if info.compress_type != zipfile.ZIP_DEFLATED:
                    raise _refuse(path, info, f"compression method {info.compress_type} (PyTorch reads stored "
                                              "or deflated members only)")
                inflated += declared
                if inflated > MAX_INFLATED_BYTES:
                    raise _refuse(path, info, f"compressed members declare {inflated} bytes, over the "
                                              f"{MAX_INFLATED_BYTES}-byte limit on what an archive may inflate to")
                actual = _inflated_size(fh, info, stop_after=declared)
                if actual != declared:
                    more = "more" if actual > declared else "fewer"
                    raise _refuse(path, info, f"inflates to {more} bytes than the {declared} it declares")
    except (zipfile.BadZipFile, zlib.error, struct.error, OSError, ValueError, EOFError) as exc:
        raise InputError(f"not a readable zip archive ({exc.__class__.__name__}: {str(exc)[:200]})",
                         path=path) from None


def _refuse(path: str, info: zipfile.ZipInfo, why: str) -> InputError:
    return InputError(f"refused: {why}", path=path, where=f"zip member {info.filename[:120]!r}")


def _inflated_size(fh, info: zipfile.ZipInfo, stop_after: int) -> int:
    """Bytes the member's deflate stream inflates to, counted in bounded steps; stops early once
    past ``stop_after`` (so a bomb costs at most ``stop_after`` bytes of work, never its memory)."""
    fh.seek(info.header_offset)
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local file header")
    fh.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
    stream = zlib.decompressobj(-zlib.MAX_WBITS)
    total, left = 0, info.compress_size
    while left > 0 and total <= stop_after and not stream.eof:
        chunk = fh.read(min(STEP, left))
        if not chunk:
            raise EOFError("compressed member runs past the end of the file")
        left -= len(chunk)
        while chunk and total <= stop_after and not stream.eof:
            total += len(stream.decompress(chunk, STEP))
            chunk = stream.unconsumed_tail
    if total <= stop_after and not stream.eof:
        total += len(stream.flush())
    return total
