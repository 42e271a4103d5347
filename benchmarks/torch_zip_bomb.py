"""Memory of refusing a PyTorch zip bomb: a small ``.pt`` whose ``data.pkl`` inflates to GiBs.

Builds a ``torch.save`` archive whose ``data.pkl`` is the real pickle followed by ``--gib`` GiB of
zeros, deflated (about 1 MB per GiB), in two variants: the zip entry declares its true size (refused
from the declared size, nothing inflated), or declares 1 KiB (a lying entry: inflated in 1 MiB steps
until it passes the declared size). Each is opened with ``open_weights`` in a fresh process, which
prints the error, the time to refuse and its peak resident memory (``ru_maxrss``) against the
peak after importing torch. Issue 13 measured 6.6 GB for the
6 GiB bomb before ``modelatlas.weights.zip_limits`` existed. Needs torch.

Run: ``python benchmarks/torch_zip_bomb.py --gib 6``.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
import time
import torch
from modelatlas.errors import InputError
from modelatlas.weights import open_weights
import modelatlas.weights.torch_file
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
try:
    open_weights({path!r})
    print("accepted (unexpected)")
except InputError as exc:
    print(str(exc).split(": ", 1)[1][:120])
print(f"in {{time.perf_counter() - started:.2f}} s, peak RSS {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}} MiB "
      f"(after imports: {{base:.0f}} MiB)")
"""


def build(path: Path, gib: float, lie: bool) -> None:
    import torch

    torch.save({"w": torch.ones(2, 2)}, path)
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    zeros = b"\0" * 2**24
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info, data in members:
            if not info.filename.endswith("data.pkl"):
                dst.writestr(info, data)  # stored, as torch.save wrote it
                continue
            with dst.open(info.filename, "w", force_zip64=True) as out:
                out.write(data)
                for _ in range(int(gib * 2**30) // len(zeros)):
                    out.write(zeros)
    if lie:
        _declare(path, "data.pkl", 1024)


def _declare(path: Path, suffix: str, size: int) -> None:
    """Rewrite the member's declared uncompressed size in its local and central headers (and in the
    zip64 extra fields torch's reader and ``zipfile`` consult)."""
    blob = bytearray(path.read_bytes())
    for signature, size_at, name_len_at, name_at, extra_len_at in ((b"PK\x03\x04", 22, 26, 30, 28),
                                                                   (b"PK\x01\x02", 24, 28, 46, 30)):
        start = 0
        while (start := blob.find(signature, start)) >= 0:
            name_len, extra_len = struct.unpack_from("<HH", blob, start + name_len_at)
            if signature == b"PK\x01\x02":
                extra_len = struct.unpack_from("<H", blob, start + extra_len_at)[0]
            name = bytes(blob[start + name_at:start + name_at + name_len])
            if name.endswith(suffix.encode()):
                if struct.unpack_from("<I", blob, start + size_at)[0] == 0xFFFFFFFF:
                    extra = start + name_at + name_len
                    end = extra + extra_len
                    while extra + 4 <= end:  # zip64 extra: header id 1, then the uncompressed size
                        tag, length = struct.unpack_from("<HH", blob, extra)
                        if tag == 1:
                            struct.pack_into("<Q", blob, extra + 4, size)
                        extra += 4 + length
                else:
                    struct.pack_into("<I", blob, start + size_at, size)
            start += 4
    path.write_bytes(bytes(blob))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=6.0, help="GiB data.pkl inflates to (default 6)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for lie in (False, True):
            path = Path(tmp) / f"bomb-{'lying' if lie else 'honest'}.pt"
            started = time.perf_counter()
            build(path, args.gib, lie)
            built = time.perf_counter() - started
            out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), path=str(path))],
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()
            print(f"{'declared 1 KiB' if lie else 'declared true size':20s} file {path.stat().st_size / 2**20:6.1f} MiB "
                  f"(built in {built:.0f} s): {out[0]} | {out[-1]}")


if __name__ == "__main__":
    main()
