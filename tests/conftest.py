"""Shared fixtures: where the real data lives, and temporary atlases."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Real Hub metadata and annotations, beside the project checkout (never copied into it).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder ``../shared/data``; the test is skipped with a message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent: real-data tests need the shared data folder beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def hf_trees_path(shared_data: Path) -> Path:
    path = shared_data / "hf-trees.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path.name} is absent from ../shared/data")
    return path


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """The ``tiny`` zoo (seed 0) as a :class:`modelatlas.zoo.Zoo`, built once per test session
    (shared by xdist workers); skipped when PyTorch is absent."""
    import os

    pytest.importorskip("torch", reason="building zoos needs PyTorch: pip install 'modelatlas[torch]'")
    from modelatlas.zoo.recipes import build_cached

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, shared by the workers
    return build_cached("tiny", base / "zoo-cache")


@pytest.fixture(scope="module")
def web_view():
    """The web view of the hand-made atlas of the web tests (tests/web_atlas.py)."""
    from modelatlas.viz.data import AtlasView
    from web_atlas import hand_made_atlas

    return AtlasView(hand_made_atlas())


@pytest.fixture(scope="module")
def web_client(web_view):
    """The JSON API over :func:`web_view`, reached by a loopback host name (the Host allow-list)."""
    from fastapi.testclient import TestClient

    from modelatlas.viz.server import create_app

    return TestClient(create_app(web_view), base_url="http://127.0.0.1:8000", raise_server_exceptions=False)
