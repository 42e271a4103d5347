"""Optional dependencies: the core installs and imports without them, and a command that needs one
names the extra to install (docs/architecture.md, "Dependencies")."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from modelatlas.cli import main
from modelatlas.errors import OPTIONAL_EXTRAS
from web_atlas import hand_made_atlas

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = sorted(OPTIONAL_EXTRAS)


def test_every_optional_module_has_its_extra_in_pyproject():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, extra in OPTIONAL_EXTRAS.items():
        if module == "starlette":  # comes with fastapi
            continue
        assert any(req.lower().startswith(module) for req in extras[extra]), (module, extra)


def test_core_commands_import_without_optional_modules():
    """Importing the package and building the command line loads none of them (a blocked import
    raises, so a module-level import anywhere on that path fails this test)."""
    script = ("import sys\n"
              "class Block:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              f"        if name.split('.')[0] in {BLOCKED!r}:\n"
              "            raise ModuleNotFoundError(name, name=name)\n"
              "sys.meta_path.insert(0, Block())\n"
              "import modelatlas, modelatlas.cli\n"
              "from modelatlas.atlas.atlas import Atlas\n"
              "from modelatlas.chart.estimator import get_method\n"
              "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("module, extra, args", [
    ("uvicorn", "web", ["serve", "--port", "65000"]),
    ("matplotlib", "figures", ["figure", "galaxy", "--out", "{tmp}/g.png"]),
])
def test_a_command_names_the_extra_it_needs(tmp_path, capsys, monkeypatch, module, extra, args):
    path = tmp_path / "atlas.duckdb"
    hand_made_atlas().save(path)
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)
    status = main([a.format(tmp=tmp_path) for a in args] + ["--atlas", str(path)])
    err = capsys.readouterr().err
    assert status == 2
    assert f"modelatlas[{extra}]" in err and "Traceback" not in err
