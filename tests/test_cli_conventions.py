"""Command-line conventions (docs/cli.md): results on standard output, diagnostics on standard
error, nothing cut when piped, TSV that parses, NO_COLOR, --version, one-line errors with status 2,
one vocabulary of JSON keys, and the library never importing the CLI."""

from __future__ import annotations

import ast
import json
import os
import pty
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.cli import main
from modelatlas.commands.output import tsv_cell
from science_atlases import build, edge, model, small_atlas

REPO = Path(__file__).resolve().parents[1]
LONG_ID = "org/" + "a-very-long-model-name-" * 5 + "x" * 1  # 120 characters
BIG = 87_030_123_456


def call(args: list[str]) -> int:
    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # click's own exits (--help) end this way
        return exc.code or 0


@pytest.fixture(scope="module")
def atlas_path(tmp_path_factory):
    return small_atlas().save(tmp_path_factory.mktemp("conv") / "atlas.duckdb")


@pytest.fixture(scope="module")
def long_atlas(tmp_path_factory):
    """An atlas whose most downloaded model has a 120-character id and an 11-digit download count."""
    assert len(LONG_ID) == 120
    atlas = build([model("base/root", downloads=5, license="mit"), model(LONG_ID, downloads=BIG, license="mit")],
                  [edge("base/root", LONG_ID)])
    return atlas.save(tmp_path_factory.mktemp("long") / "atlas.duckdb")


def _run(args: list[str], **env) -> subprocess.CompletedProcess:
    """The CLI in a child process with pipes for both streams (never a terminal) and 80 columns."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80", **env}
    environ.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "modelatlas.cli", *map(str, args)], capture_output=True,
                          text=True, env=environ, timeout=120)


def _run_on_terminal(args: list[str], **env) -> tuple[bytes, int]:
    """The CLI with standard output and error on a pseudo-terminal; everything written, and the status."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color", **env}
    for name in ("FORCE_COLOR", "NO_COLOR") if "NO_COLOR" not in env else ("FORCE_COLOR",):
        environ.pop(name, None)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "modelatlas.cli", *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, env=environ)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks), proc.wait(timeout=120)


# -- results on standard output, diagnostics on standard error ------------------------------------------

@pytest.mark.parametrize("args", [
    ["info"], ["top"], ["stats"], ["lineage", "a/ft2"], ["lineage", "e/ft3", "--tree"], ["forensics", "a/ft2"],
    ["forensics", "--licences"], ["search", "--descendants-of", "meta/llama"],
    ["ecosystem", "structures"], ["ecosystem", "summary"],
])
def test_results_go_to_stdout_as_well_formed_tsv(atlas_path, capsys, args):
    assert call([*args, "--atlas", atlas_path]) == 0
    out, err = capsys.readouterr()
    assert out and err == ""
    if "--tree" in args:
        return  # a tree is indented text (test_lineage_tree_*)
    # TSV: blocks separated by a blank line; in each, '# ' lines, then a header and rows of as many cells.
    blocks = [b for b in out.split("\n\n") if b.strip()]
    tables = 0
    for block in blocks:
        lines = [line for line in block.splitlines() if not line.startswith("# ")]
        if lines:
            tables += 1
            width = lines[0].count("\t")
            assert all(line.count("\t") == width for line in lines), block
    assert tables >= 1


def test_info_piped_to_grep_finds_the_node_count(atlas_path):
    res = _run(["info", "--atlas", atlas_path])
    assert res.returncode == 0 and res.stderr == ""
    from modelatlas import Atlas

    assert f"nodes\t{Atlas.load(atlas_path).nodes.num_rows}" in res.stdout.splitlines()


def test_nothing_is_cut_at_80_columns(long_atlas):
    for fmt in ("tsv", "table"):
        res = _run(["top", "--by", "downloads", "--atlas", long_atlas, "--format", fmt])
        assert res.returncode == 0, res.stderr
        assert LONG_ID in res.stdout and "…" not in res.stdout
        assert (str(BIG) if fmt == "tsv" else f"{BIG:,}") in res.stdout
    tsv = _run(["top", "--by", "downloads", "--atlas", long_atlas]).stdout  # piped: TSV by default
    header, first = tsv.splitlines()[1:3]
    row = dict(zip(header.split("\t"), first.split("\t")))
    assert row["id"] == LONG_ID and row["downloads"] == str(BIG)


def test_a_table_on_a_terminal_folds_but_keeps_every_character(long_atlas):
    raw, status = _run_on_terminal(["top", "--by", "downloads", "--atlas", long_atlas], COLUMNS="80")
    assert status == 0
    text = raw.decode()
    assert "┃" in text or "│" in text  # drawn as a table on a terminal
    assert "…" not in text
    cells = "".join(line.split("│")[3].strip() for line in text.splitlines() if line.count("│") > 3)
    assert cells.startswith(f"{BIG:,}")  # the downloads column, folded over lines but complete


def test_progress_and_notes_stay_off_stdout(tmp_path, capsys):
    from test_chart_cli import _write_zoo

    zoo = _write_zoo(tmp_path / "zoo", absent=("mlp-a/ft-1",))
    assert call(["chart", zoo, "--format", "tsv"]) == 0
    out, err = capsys.readouterr()
    assert "note:" in err and "mlp-a/ft-1" in err
    assert "note:" not in out and out.startswith("# chart ")


# -- formats -----------------------------------------------------------------------------------------------

def test_json_is_an_alias_of_format_json(atlas_path, capsys):
    assert call(["lineage", "a/ft2", "--atlas", atlas_path, "--json"]) == 0
    by_flag = json.loads(capsys.readouterr().out)
    assert call(["lineage", "a/ft2", "--atlas", atlas_path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_flag
    assert call(["lineage", "a/ft2", "--atlas", atlas_path, "--json", "--format", "tsv"]) == 2
    assert "two formats" in capsys.readouterr().err


@given(st.one_of(st.text(), st.lists(st.text(), max_size=4), st.none(), st.integers(), st.floats()))
@settings(max_examples=300, deadline=None)
def test_a_tsv_cell_never_breaks_a_row(value):
    cell = tsv_cell(value)
    assert "\t" not in cell and "\n" not in cell and "\r" not in cell
    assert cell.isprintable()


def test_tsv_cells_are_exact():
    assert tsv_cell(0.1 + 0.2) == "0.30000000000000004"  # full precision
    assert tsv_cell(BIG) == "87030123456" and tsv_cell(None) == "" and tsv_cell(float("nan")) == ""
    assert tsv_cell(["a", "b"]) == "a|b" and tsv_cell({"mit": 2}) == "mit=2"
    assert tsv_cell("a\tb\nc\\d") == "a\\tb\\nc\\\\d" and tsv_cell("\x1b[31m") == "\\x1b[31m"


# -- colour ------------------------------------------------------------------------------------------------

def test_errors_are_red_on_a_terminal_unless_no_color(atlas_path, tmp_path):
    missing = tmp_path / "absent.duckdb"
    raw, status = _run_on_terminal(["info", "--atlas", missing])
    assert status == 2 and b"\x1b[" in raw  # the check below can fail: colour is on by default
    for env, extra in (({"NO_COLOR": "1"}, []), ({}, ["--no-color"])):
        raw, status = _run_on_terminal([*extra, "info", "--atlas", missing], **env)
        assert status == 2 and b"no atlas here" in raw
        assert b"\x1b" not in raw, raw


def test_no_color_tables_on_a_terminal_have_no_escapes(atlas_path):
    raw, status = _run_on_terminal(["info", "--atlas", atlas_path], NO_COLOR="1")
    assert status == 0 and b"nodes" in raw and b"\x1b" not in raw
    raw, status = _run_on_terminal(["--no-color", "lineage", "e/ft3", "--tree", "--atlas", atlas_path])
    assert status == 0 and b"d/merge" in raw and b"\x1b" not in raw


# -- version and errors ----------------------------------------------------------------------------------

def test_version_is_the_installed_distribution(capsys):
    assert call(["--version"]) == 0
    assert capsys.readouterr().out == f"modelatlas {version('modelatlas')}\n"


@pytest.mark.parametrize("args, message", [
    (["info", "--bogus"], "No such option: --bogus"),
    (["info", "--format", "xml"], "'xml' is not one of"),
    (["lineage", "no/such-model"], "not in the atlas"),
    (["forensics"], "name a MODEL_ID"),
    (["lineage", "a/ft2", "--depth", "-1"], "--depth"),
])
def test_user_errors_are_one_plain_line_and_status_2(atlas_path, capsys, args, message):
    assert call([*args, "--atlas", atlas_path]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert "╭" not in err and "Traceback" not in err


# -- chart --json, lineage --tree --------------------------------------------------------------------------

def test_chart_json_lists_every_predicted_edge(tmp_path, capsys):
    from test_chart_cli import _write_zoo

    zoo = _write_zoo(tmp_path / "zoo")
    assert call(["chart", zoo, "--method", "auto", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    manifest = json.loads((zoo / "manifest.json").read_text())
    truth = {(p, m["id"]) for m in manifest["models"] for p in m["parents"]}
    assert out["n_edges"] == len(out["edges"]) == len(truth)
    assert {(e["parent"], e["child"]) for e in out["edges"]} == truth  # auto is exact on this zoo
    for e in out["edges"]:
        assert set(e) == {"parent", "child", "relation", "relation_rule", "confidence"}
        assert 0.0 <= e["confidence"] <= 1.0 and e["relation"] in {"finetune", "adapter", "quantized", "merge"}


def test_bench_families_tsv_holds_the_json_numbers_in_full(tmp_path, capsys):
    from test_chart_cli import _write_zoo

    zoo = _write_zoo(tmp_path / "zoo")
    args = ["bench", "chart", "--families", f"hand={zoo}", "--synthetic", "30", "--seeds", "1", "--no-ablations"]
    assert call([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert call(args) == 0
    first = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert first[0].startswith("# Leave-one-family-out")
    rows = [dict(zip(first[1].split("\t"), line.split("\t"))) for line in first[2:]]
    cell = {(r["method"], r["family"]): r["accuracy"] for r in report["results"]}
    assert len(rows) == len(report["summary"])
    for row in rows:
        for family in ("hand", "synthetic"):
            assert float(row[family]) == 100 * cell[row["method"], family]  # exact: nothing rounded away


def test_lineage_tree_is_indented_text_when_piped(atlas_path, capsys):
    assert call(["lineage", "e/ft3", "--tree", "--atlas", atlas_path]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("# ancestors of e/ft3")
    ancestry = [line for line in lines[start + 1:lines.index("# descendants of e/ft3")] if line]
    # e/ft3 <- d/merge <- {meta/llama, a/ft1 <- meta/llama (drawn once, then marked)}
    assert ancestry[0] == "e/ft3"
    assert ancestry[1] == "  d/merge  (finetune, hub_tag)"
    depth = {line.strip().split("  ")[0]: (len(line) - len(line.lstrip())) // 2 for line in ancestry}
    assert depth["a/ft1"] == 2 and depth["meta/llama"] in (2, 3)
    assert sum("meta/llama" in line for line in ancestry) == 2
    assert sum("(shown above)" in line for line in ancestry) == 1


def test_lineage_tree_json(atlas_path, capsys):
    assert call(["lineage", "meta/llama", "--tree", "--max-children", "2", "--depth", "1", "--atlas",
                 atlas_path, "--json"]) == 0
    trees = json.loads(capsys.readouterr().out)["trees"]
    assert trees["ancestors"]["children"] == []
    down = trees["descendants"]
    # meta/llama has four children; two drawn (most downloaded first: b/q1 500, d/merge 300), two counted
    assert [c["id"] for c in down["children"]] == ["b/q1", "d/merge"] and down["more"] == 2
    assert all(c["children"] == [] for c in down["children"])  # --depth 1


@st.composite
def dags(draw):
    n = draw(st.integers(2, 9))
    edges = [(p, c) for c in range(1, n) for p in draw(st.sets(st.integers(0, c - 1), max_size=3))]
    return n, edges


@given(dags())
@settings(max_examples=40, deadline=None)
def test_an_unbounded_tree_draws_every_descendant_once(dag):
    from modelatlas.discover.lineage import lineage
    from modelatlas.discover.lineage_tree import lineage_tree

    n, pairs = dag
    atlas = build([model(f"m/{i}") for i in range(n)], [edge(f"m/{p}", f"m/{c}") for p, c in pairs])
    for direction in ("descendants", "ancestors"):
        tree = lineage_tree(atlas, "m/0" if direction == "descendants" else f"m/{n - 1}", direction,
                            max_children=n, max_nodes=10 * n * n)
        drawn, stack = [], [tree]
        while stack:
            node = stack.pop()
            if not node["repeat"]:
                drawn.append(node["id"])
            assert node["more"] == 0 and (node["children"] == [] or not node["repeat"])
            stack += node["children"]
        assert len(drawn) == len(set(drawn))
        if direction == "descendants":
            assert len(drawn) == 1 + lineage(atlas, "m/0").descendants
        else:
            assert set(drawn) == {f"m/{n - 1}"} | {a["id"] for a in lineage(atlas, f"m/{n - 1}").ancestors}


# -- one vocabulary of JSON keys ---------------------------------------------------------------------------

def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.mark.parametrize("args", [
    ["lineage", "d/merge", "--tree"], ["forensics", "e/ft3"], ["forensics", "--licences"], ["top"],
    ["search", "--descendants-of", "meta/llama"], ["ecosystem", "summary"], ["info"],
])
def test_json_keys_use_id_and_licence(atlas_path, capsys, args):
    assert call([*args, "--atlas", atlas_path, "--json"]) == 0
    keys = _keys(json.loads(capsys.readouterr().out))
    assert not keys & {"model", "model_id", "license", "licenses"}, keys


def test_lineage_and_forensics_json_name_the_model_and_its_licence(atlas_path, capsys):
    assert call(["lineage", "a/ft2", "--atlas", atlas_path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "a/ft2"
    assert call(["forensics", "a/ft2", "--atlas", atlas_path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["id"] == "a/ft2" and report["licence"] == "apache-2.0"
    assert report["licence_drift"][0]["ancestor"] == "meta/llama"  # llama2 above apache-2.0


# -- a thin CLI ---------------------------------------------------------------------------------------------

def test_the_library_never_imports_the_cli():
    package = REPO / "modelatlas"
    offenders = []
    for path in package.rglob("*.py"):
        rel = path.relative_to(package)
        if rel.parts[0] == "commands" or rel.name in ("cli.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{rel}: {n}" for n in names if n.startswith(("modelatlas.commands", "modelatlas.cli"))]
    assert offenders == []


def test_figure_does_not_write_the_atlas(tmp_path, capsys):
    from web_atlas import hand_made_atlas

    path = hand_made_atlas().save(tmp_path / "a.duckdb")  # no layout cached
    before = path.read_bytes()
    assert call(["figure", "component", "--atlas", path, "--out", tmp_path / "f.png"]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'f.png'}\n"
    assert path.read_bytes() == before
