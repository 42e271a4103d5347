"""The web server holds: a Host allow-list against DNS rebinding, HEAD for every GET, every model of
the atlas openable (odd ids included), "did you mean" from a small index, a busy port reported
before any URL (docs/web.md, "A server that holds")."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from urllib.parse import quote

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from modelatlas import Atlas
from modelatlas.atlas.id_lookup import IdLookup
from modelatlas.viz.data import AtlasView
from modelatlas.viz.server import create_app
from web_atlas import hand_made_atlas

ODD_IDS = ["ünïcode/模型", "x" * 300 + "/long-name", "just-a-name", "owner/with space"]


@pytest.fixture(scope="module")
def view():
    atlas = hand_made_atlas()
    odd = pa.Table.from_pylist([{"id": m, "created_at": datetime(2024, 1, 1, tzinfo=timezone.utc), "downloads": 1}
                                for m in ODD_IDS])
    return AtlasView(atlas.merged_with(odd))


def _client(view, host: str, allow=()) -> TestClient:
    return TestClient(create_app(view, allow_hosts=allow), base_url=f"http://{host}", raise_server_exceptions=False)


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "LOCALHOST", "127.0.0.2:9", "[::1]:8000",
                                  "localhost."])
def test_loopback_hosts_are_served(view, host):
    assert _client(view, host).get("/api/meta").status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "192.168.1.5:8000", "[::2]:8000",
                                  "localhost.attacker.example", "127.0.0.1.nip.io"])
def test_other_hosts_are_refused(view, host):
    r = _client(view, host).get("/api/meta")
    assert r.status_code == 421 and "allow-host" in r.json()["error"]
    assert "nodes" not in r.text


def test_allow_host_adds_a_name(view):
    assert _client(view, "atlas.lab.example:8000", allow=["atlas.lab.example"]).get("/api/meta").status_code == 200
    assert _client(view, "other.lab.example:8000", allow=["atlas.lab.example"]).get("/api/meta").status_code == 421


@pytest.mark.parametrize("path", ["/api/meta", "/api/components?limit=3", "/api/components/0/graph",
                                  "/api/models/lmsys/vicuna-7b", "/api/search?q=llama", "/api/overview",
                                  "/api/models/nobody/nothing"])
def test_head_answers_every_get_without_body(view, path):
    client = _client(view, "127.0.0.1:8000")
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert int(head.headers["content-length"]) == len(got.content)


@pytest.mark.parametrize("model_id", ODD_IDS)
def test_every_model_of_the_atlas_opens(view, model_id):
    r = _client(view, "127.0.0.1:8000").get("/api/models/" + quote(model_id, safe="/"))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == model_id


def test_an_id_longer_than_any_in_the_atlas_is_refused_unread(view):
    r = _client(view, "127.0.0.1:8000").get("/api/models/" + "y" * 5000)
    assert r.status_code == 404 and "characters" in r.json()["error"]


def _hub_like_ids() -> list[str]:
    owners = [f"owner{i:03d}" for i in range(60)]
    return sorted(f"{o}/model-{kind}-{j}b" for o in owners for kind in ("llama", "mistral", "bert") for j in (1, 7))


@pytest.mark.parametrize("typo, meant", [
    ("owner017/model-mistral-7", "owner017/model-mistral-7b"),     # the end missing
    ("0wner017/model-mistral-7b", "owner017/model-mistral-7b"),    # the start mistyped
    ("OWNER017/MODEL-MISTRAL-7B", "owner017/model-mistral-7b"),    # the case
    ("someone/model-mistral-7b", "owner000/model-mistral-7b"),     # the owner wrong: a same-named model
])
def test_suggestions_find_the_id_meant(typo, meant):
    ids = _hub_like_ids()
    suggestions = IdLookup(pa.array(ids)).suggest(typo)
    if typo.startswith("someone/"):
        assert suggestions and all(s.endswith("/model-mistral-7b") for s in suggestions)
    else:
        assert suggestions[0] == meant


def test_find_matches_a_set_lookup_in_any_order():
    ids = _hub_like_ids()
    shuffled = ids[::7] + ids[1::7] + ids[2::7] + ids[3::7] + ids[4::7] + ids[5::7] + ids[6::7]
    lookup = IdLookup(pa.array(shuffled))
    assert [lookup.find(m) for m in shuffled] == list(range(len(shuffled)))
    assert lookup.find("owner999/model-llama-7b") is None


def test_serve_on_a_busy_port_says_so_before_any_url(tmp_path, capsys):
    from modelatlas.cli import main

    path = tmp_path / "atlas.duckdb"
    Atlas.save(hand_made_atlas(), path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        status = main(["serve", "--atlas", str(path), "--port", str(port)])
    said = capsys.readouterr()
    assert status == 3
    assert f"port {port}" in said.err and "in use" in said.err
    assert "http://" not in said.out + said.err


def test_the_listening_socket_is_tcp_so_answers_are_not_delayed():
    """asyncio turns Nagle's algorithm off only on sockets whose protocol says TCP; without it a
    keep-alive client waited ~40 ms per answer for a delayed ACK."""
    import asyncio

    from modelatlas.commands.viz import _listening_socket

    sock = _listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]

    async def nodelay_of_accepted() -> int:
        seen = {}

        def on_connect(reader, writer):
            seen["nodelay"] = writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        return seen.get("nodelay", 0)

    assert asyncio.run(nodelay_of_accepted()) != 0


def test_an_interface_that_does_not_resolve_is_one_line_before_any_url(tmp_path, capsys):
    from modelatlas.cli import main

    path = tmp_path / "atlas.duckdb"
    Atlas.save(hand_made_atlas(), path)
    status = main(["serve", "--atlas", str(path), "--host", "no-such-host.invalid", "--port", "8765"])
    said = capsys.readouterr()
    assert status == 3
    assert "cannot listen on 'no-such-host.invalid'" in said.err and len(said.err.strip().splitlines()) == 1
    assert "http://" not in said.out + said.err
