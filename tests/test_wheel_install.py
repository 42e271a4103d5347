"""The built wheel installs into a clean virtualenv from wheels alone — no compiler, no sdist built —
its command runs and the web page ships with it (docs/architecture.md, "Dependencies")."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The clean environment must not see this checkout (a PYTHONPATH to it would make pip think the
#: package is installed already).
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.mark.xdist_group("wheel")
def test_wheel_installs_from_binaries_only(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("modelatlas-*.whl")
    env_dir = tmp_path / "clean"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # --only-binary :all: refuses to build anything from source: every dependency must ship a wheel.
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--only-binary", ":all:", str(wheel)],
                               capture_output=True, text=True, timeout=900, env=CLEAN_ENV, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]
    ran = subprocess.run([str(env_dir / "bin" / "modelatlas"), "--help"], capture_output=True, text=True, timeout=120,
                         env=CLEAN_ENV, cwd=tmp_path)
    assert ran.returncode == 0 and "ingest" in ran.stdout, ran.stderr[-2000:]
    shipped = subprocess.run([str(python), "-c", "import modelatlas, pathlib; "
                              "print((pathlib.Path(modelatlas.__file__).parent / 'viz/static/index.html').is_file())"],
                             capture_output=True, text=True, timeout=120, env=CLEAN_ENV, cwd=tmp_path)
    assert shipped.stdout.strip() == "True", shipped.stderr[-2000:]  # the web page ships in the wheel
