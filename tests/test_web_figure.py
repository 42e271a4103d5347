"""``modelatlas figure`` and the ``serve``/``layout`` commands."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from modelatlas.cli import main
from modelatlas.errors import InputError
from modelatlas.viz.data import AtlasView
from modelatlas.viz.figure import category_colors, draw_figure
from modelatlas.viz.layout import LAYOUT_TABLE
from web_atlas import hand_made_atlas

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> int:
    """Exit status of ``modelatlas ARGS`` run in this process."""
    try:
        return main(args)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture(scope="module")
def view():
    return AtlasView(hand_made_atlas())


def test_galaxy_png(view, tmp_path):
    out = draw_figure(view, "galaxy", tmp_path / "g.png", color="license", size="sub_tree_downloads")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_component_svg_has_every_member_and_edge(view, tmp_path):
    out = draw_figure(view, "component", tmp_path / "c.svg", model="stabilityai/sd-ft", color="relation")
    text = out.read_text()
    assert text.startswith("<?xml") and "component 1: 3 models" in text
    assert "finetune" in text and "adapter" in text  # legend labels


@pytest.mark.parametrize("kwargs,message", [
    ({"kind": "pie"}, "unknown figure kind"),
    ({"out": "x.pdf"}, ".png or .svg"),
    ({"color": "card_text"}, "cannot colour by"),
    ({"size": "height"}, "cannot size by"),
    ({"kind": "component", "model": "no/such-model"}, "not in the atlas"),
    ({"kind": "component", "component": 7}, "does not exist"),
])
def test_figure_bad_input(view, tmp_path, kwargs, message):
    args = {"kind": "galaxy", "out": "f.png", **kwargs}
    with pytest.raises(InputError, match=message):
        draw_figure(view, args.pop("kind"), tmp_path / args.pop("out"), **args)


def test_unknown_is_light_blue():
    assert category_colors("license", ["unknown", "mit", "other", "(other values)"], "(other values)") == \
        ["#add8e6", "#e6194b", "#3cb44b", "#a9a9a9"]
    assert category_colors("relation", ["unknown", "adapter"], "(other values)")[1] == "#3cb44b"


def test_layout_and_figure_commands(tmp_path, capsys):
    path = hand_made_atlas().save(tmp_path / "a.duckdb")
    assert run(["layout", "--atlas", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nodes"] == 40 and summary["kept_from_cache"] == 0
    from modelatlas import Atlas

    assert Atlas.load(path).extras[LAYOUT_TABLE].num_rows == 40
    assert run(["figure", "component", "--atlas", str(path), "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert run(["figure", "galaxy", "--atlas", str(path), "--out", str(tmp_path / "f.gif")]) == 2
    assert ".png or .svg" in capsys.readouterr().err
    assert run(["serve", "--atlas", str(tmp_path / "missing.duckdb")]) == 2


def test_serve_command_listens_on_loopback(tmp_path):
    path = hand_made_atlas().save(tmp_path / "a.duckdb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "modelatlas", "serve", "--atlas", str(path), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=2) as r:
                    meta = json.load(r)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stderr.read().decode())
                time.sleep(0.2)
        assert meta["nodes"] == 40
        # The layout was computed once and cached in the atlas file.
        from modelatlas import Atlas

        assert Atlas.load(path).extras[LAYOUT_TABLE].num_rows == 40
    finally:
        proc.terminate()
        proc.wait(timeout=10)
