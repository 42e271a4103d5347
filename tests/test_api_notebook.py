"""The example notebook (examples/atlas_tour.ipynb; issue 14's target: ingest the shared hf-trees
data, ask lineage, stats and search, chart a zoo and draw a family in at most 25 lines of user
code) runs from top to bottom."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "atlas_tour.ipynb"


def _code_lines(nb) -> int:
    return sum(1 for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def test_the_tour_stays_short():
    nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the test extras (nbformat)")
    assert _code_lines(nbformat.read(NOTEBOOK, as_version=4)) <= 25


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.shared_data
def test_the_tour_runs_on_the_shared_data(hf_trees_path, tiny_zoo, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the test extras (nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="the notebook tests need the test extras (nbclient)")
    pytest.importorskip("ipykernel", reason="the notebook tests need the test extras (ipykernel)")
    # The kernel inherits the environment: the data folder, and the zoo the session already built.
    monkeypatch.setenv("MODELATLAS_DATA", str(hf_trees_path.parent))
    monkeypatch.setenv("MODELATLAS_ZOO_CACHE", str(tiny_zoo.root.parent))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "<Atlas: 6,617 models" in text and "<Lineage: TheBloke/Llama-2-7B-Chat-GGUF" in text
    assert "<ChartRun: atlas:" in text and "accuracy" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the family drawing
