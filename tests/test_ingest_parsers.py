"""Hypothesis tests of the tag and card parsers, and unit cases with known answers."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.ingest.card import CardDataError, card_fields, load_card_data, model_index_metrics, split_front_matter
from modelatlas.ingest.normalize import modality, normalize_license
from modelatlas.ingest.pyvalue import sibling_names
from modelatlas.ingest.tags import parse_tag
from modelatlas.ingest.weights_files import WEIGHT_EXTENSIONS, has_weights

name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,15}", fullmatch=True).filter(lambda n: ".." not in n)  # no ".."
model_id = st.builds(lambda a, b: f"{a}/{b}", name, name)
relation = st.sampled_from(["finetune", "adapter", "quantized", "merge"])


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_any_tag_splits_into_key_and_value_or_stays_plain(tag):
    parts = parse_tag(tag)
    if parts.key is None:
        assert parts.value is None
    else:
        assert f"{parts.key}:{parts.value}" == tag


@settings(max_examples=60, deadline=None)
@given(model_id, st.one_of(st.none(), relation), st.sampled_from(["", "/"]))
def test_base_model_tags_round_trip(mid, rel, trailing):
    tag = f"base_model:{rel}:{mid}{trailing}" if rel else f"base_model:{mid}{trailing}"
    parts = parse_tag(tag)
    assert (parts.parent, parts.relation, parts.problem) == (mid, rel, None)


def test_malformed_base_model_tags():
    assert parse_tag("base_model:").problem == "names no model id"
    assert parse_tag("base_model:adapter:").problem == "names no model id"
    assert parse_tag("base_model:a b/c").problem == "names an invalid model id"
    assert parse_tag("base_model::a/b").problem == "has an empty relation word"


card_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
                          lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                          max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(model_id, min_size=1, max_size=4, unique=True), st.one_of(st.none(), relation),
       st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True).filter(
           lambda k: k not in ("base_model", "base_model_relation")), card_value, max_size=3),
       st.booleans())
def test_card_yaml_round_trip(bases, rel, other, as_text):
    data = dict(other, base_model=bases if len(bases) > 1 else bases[0])
    if rel:
        data["base_model_relation"] = rel
    fields = card_fields(yaml.safe_dump(data) if as_text else data)
    assert fields["base_models"] == sorted(bases)
    assert fields["base_model_relation"] == rel


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=60))
def test_card_yaml_parser_never_crashes(text):
    try:
        data = load_card_data(text)
    except CardDataError as exc:
        assert str(exc)
    else:
        assert data is None or isinstance(data, dict)


def test_card_parts():
    assert split_front_matter("---\na: 1\n---\nbody") == ("a: 1\n", "body")
    assert card_fields("base_model: A/B/\nlicense: [MIT]\nlanguage: EN\ndatasets: d/x")["base_models"] == ["A/B"]
    with pytest.raises(CardDataError, match=r"broken YAML at line \d+, column \d+"):
        load_card_data("a: [b")
    index = {"model-index": [{"results": [{"dataset": {"name": "arc"}, "metrics": [
        {"type": "acc", "value": "61.5"}, {"type": "f1", "value": "n/a"}]}]}]}
    assert model_index_metrics(index) == [("arc/acc", 61.5)]


def test_vocabularies():
    assert modality("text-generation") == "language" and modality("text-to-image") == "vision" and modality("image-text-to-text") == "vision-language"
    assert modality("something-new") == "other" and modality(None) is None
    assert normalize_license("Apache 2.0") == "apache-2.0"
    assert len(WEIGHT_EXTENSIONS) == 26 and has_weights(["x/MODEL.SafeTensors"]) and not has_weights(["a.txt"])
    assert has_weights(None) is None
    assert sibling_names("[\"RepoSibling(rfilename='a b.bin', size=None)\", {'rfilename': 'c'}]") == ["a b.bin", "c"]


def test_ingest_connections_spill_under_the_system_temp_folder(tmp_path, monkeypatch):
    """DuckDB's default spill folder for an in-memory database is ``.tmp`` in the current
    directory; an ingest must never write there."""
    import tempfile
    from pathlib import Path

    from modelatlas.ingest.textfile import quiet_connection

    monkeypatch.chdir(tmp_path)
    con = quiet_connection()
    try:
        folder = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
    finally:
        con.close()
    assert folder.parent == Path(tempfile.gettempdir()) and not (tmp_path / ".tmp").exists()
