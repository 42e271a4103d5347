"""A long hypothesis run of the weight-file parsers (issue 13's target: 30 minutes, no failure).

Runs the properties of ``tests/weight_fuzz.py`` (the ones ``tests/test_weights_fuzz.py`` runs
briefly in CI) in turn, in batches of fresh random examples, until the time is up: safetensors
headers (and parity with the ``safetensors`` library), shard indexes, GGUF files, ONNX models.
Every example runs under an alarm, so a parser that blocks (a FIFO read as data) is a failure, not
a hang. Prints, per parser, the examples tried and the failures (each shrunk by hypothesis, with
its exception), and exits 1 if there was any. Not run by CI.

Run: ``nice python benchmarks/fuzz_weights.py --minutes 30`` (``--minutes 1`` for a smoke run).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import InvalidArgument  # noqa: E402

import weight_fuzz as wf  # noqa: E402

#: Seconds one example may take before it counts as a hang.
EXAMPLE_TIMEOUT = 30


class Hang(Exception):
    """An example ran past EXAMPLE_TIMEOUT seconds."""


def _alarm(*_):
    raise Hang(f"an example ran for more than {EXAMPLE_TIMEOUT} s")


def _safetensors(case):
    blob, _ = case
    wf.check_safetensors_header(blob)
    wf.check_safetensors_parity(blob)


def _shards(text):
    with wf.scratch_folder() as folder:
        wf.write_shards(Path(folder))
        wf.check_shard_index(text, Path(folder))


def _gguf(blob):
    with wf.scratch_folder() as folder:
        wf.check_gguf(blob, Path(folder))


def _onnx(blob):
    with wf.scratch_folder() as folder:
        wf.prepare_onnx_folder(Path(folder))
        wf.check_onnx(blob, Path(folder))


def _counted(check, name: str, tried: Counter):
    """``check`` counting its examples and bounded by the alarm."""
    def counted(value):
        tried[name] += 1
        signal.alarm(EXAMPLE_TIMEOUT)
        try:
            check(value)
        finally:
            signal.alarm(0)
    return counted


TARGETS = {
    "safetensors header + library parity": (wf.safetensors_blobs(), _safetensors),
    "shard index": (wf.shard_indexes(), _shards),
    "gguf": (wf.gguf_files(), _gguf),
    "onnx": (wf.onnx_models(), _onnx),
}


def run(minutes: float, batch: int) -> int:
    """Fuzz every target in turn until ``minutes`` are spent; return the number of failures."""
    tried: Counter = Counter()
    failures: dict[str, list[str]] = {name: [] for name in TARGETS}
    deadline = time.monotonic() + minutes * 60
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")  # NaN weights and skipped tensors warn by design
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        for name, (strategy, check) in TARGETS.items():
            if time.monotonic() >= deadline:
                break

            test = settings(max_examples=batch, deadline=None, database=None, print_blob=True,
                            suppress_health_check=list(HealthCheck))(given(strategy)(_counted(check, name, tried)))
            try:
                test()
            except InvalidArgument:
                raise  # the harness is wrong, not the parser
            except Exception as exc:  # noqa: BLE001 - every failure is reported, then the run goes on
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                notes = " ".join(getattr(exc, "__notes__", []))  # hypothesis's falsifying example
                text = (f"{type(exc).__name__}: {str(exc)[:2000]} (at {Path(frame.filename).name}:{frame.lineno}) "
                        f"{notes[:4000]}")
                failures[name].append(text)
                print(f"[{name}] FAILURE {text}", flush=True)
        elapsed = minutes * 60 - (deadline - time.monotonic())
        print(f"round {rounds} ({elapsed / 60:.1f} min): " + ", ".join(f"{n}: {tried[n]}" for n in TARGETS),
              flush=True)
    total = sum(len(f) for f in failures.values())
    print(f"\n{'parser':40s} {'examples':>9s} {'failures':>9s}")
    for name in TARGETS:
        print(f"{name:40s} {tried[name]:9d} {len(failures[name]):9d}")
    print(f"{'all':40s} {sum(tried.values()):9d} {total:9d}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to fuzz (default 30)")
    parser.add_argument("--batch", type=int, default=200, help="examples per target before moving to the next")
    args = parser.parse_args()
    sys.exit(1 if run(args.minutes, args.batch) else 0)


if __name__ == "__main__":
    main()
