"""The offline model answers a json_schema response format with a fitting value, in
small pieces; ``rxchat ask --schema`` prints it (whole when piped)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

import rxchat
from rxchat import operators as rxops
from rxchat._structured.instance import instance_of
from rxchat._structured.validate import SchemaChecker
from rxchat.cli import ExitCode, main
from rxchat.testing import FakeServer, Reply, chunk

SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1},
    "sights": {"type": "array", "items": {"type": "string"}, "minItems": 3},
    "pace": {"enum": ["slow", "fast"]}, "budget": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    "hotel": {"$ref": "#/$defs/Hotel"}},
    "required": ["city", "days"], "$defs": {"Hotel": {"type": "object", "properties": {
        "name": {"type": "string"}, "stars": {"type": "integer", "maximum": 5}}}}}


def test_the_offline_model_streams_a_fitting_value_from_the_words() -> None:
    params: Any = {"messages": [{"role": "user", "content": "city: Paris, days: 4, fast pace"}],
                   "response_format": rxchat.response_format(SCHEMA, name="trip")}
    with rxchat.offline_client() as client:
        pieces = rxchat.create_stream_completion(params, client=client).pipe(
            rxops.content(), ops.to_list()).run()
        value = rxchat.create_stream_completion(params, client=client).pipe(
            rxops.parsed(SCHEMA)).run()
    assert len(pieces) > 10 and max(map(len, pieces)) <= 6
    assert value["city"] == "Paris" and value["days"] == 4 and value["pace"] == "fast"
    assert len(value["sights"]) == 3 and value["hotel"]["stars"] <= 5


schemas = st.recursive(
    st.sampled_from([{"type": "string"}, {"type": "integer"}, {"type": "number"},
                     {"type": "boolean"}, {"type": "null"}, {"enum": ["a", "b"]},
                     {"const": 3}, {}]),
    lambda inner: st.builds(lambda s: {"type": "array", "items": s}, inner)
    | st.builds(lambda props: {"type": "object", "properties": props,
                               "required": list(props), "additionalProperties": False},
                st.dictionaries(st.text("abc", min_size=1, max_size=3), inner, max_size=3))
    | st.builds(lambda a, b: {"anyOf": [a, b]}, inner, inner),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(schemas, st.text(max_size=40))
def test_the_instance_always_fits_its_schema(schema: dict[str, Any], words: str) -> None:
    value = instance_of(schema, words)
    assert SchemaChecker(schema).check(value, schema) is None, value


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO(""), env={})
    return status, out.getvalue(), err.getvalue()


def test_cli_ask_with_a_schema_file_prints_the_json_when_piped(tmp_path: Path) -> None:
    path = tmp_path / "trip.json"
    path.write_text(json.dumps(SCHEMA))
    status, out, err = _run("ask", "--no-log", "--schema", str(path), "city: Rome, days: 2")
    assert status == ExitCode.OK, err
    value = json.loads(out)
    assert value["city"] == "Rome" and value["days"] == 2


def test_cli_ask_with_a_model_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "trip_models.py").write_text(
        "import dataclasses\n@dataclasses.dataclass\nclass Trip:\n    city: str\n    days: int\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    status, out, err = _run("ask", "--no-log", "--schema", "trip_models:Trip", "city: Oslo")
    assert status == ExitCode.OK, err
    assert json.loads(out) == {"city": "Oslo", "days": 1}


def test_cli_ask_with_a_reply_that_does_not_fit_is_status_8(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}}))
    with FakeServer() as server:
        server.enqueue(Reply.events([chunk(content='{"n": "x"}')]))
        status, out, err = _run("ask", "--no-log", "--base-url", server.base_url,
                                "--api-key", "k", "--model", "m", "--schema", str(path), "hi")
    assert status == ExitCode.STREAM and out == ""
    assert "$.n" in err and "must be an integer" in err


def test_cli_ask_with_a_bad_schema_is_a_usage_error(tmp_path: Path) -> None:
    status, _out, err = _run("ask", "--no-log", "--schema", str(tmp_path / "none.json"), "hi")
    assert status == ExitCode.USAGE and "--schema" in err


def _fits_whole(value: Any, schema: dict[str, Any]) -> bool:
    return SchemaChecker(schema).check(value, schema) is None


def _fits_part_by_part(text: str, schema: dict[str, Any], cuts: list[int]) -> bool:
    from rxchat._structured.parser import JSONStream
    from rxchat.errors import StructuredOutputError

    stream = JSONStream(SchemaChecker(schema))
    points = sorted({c % (len(text) + 1) for c in cuts})
    try:
        for a, b in zip([0, *points], [*points, len(text)], strict=True):
            stream.feed(text[a:b])
        stream.close()
    except StructuredOutputError:
        return False
    return True


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([1.5, "a", "b", "ab"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "c", "ab"]), inner, max_size=3),
    max_leaves=8,
)


def _object(props: dict[str, Any], required: list[str], closed: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props,
                              "required": [k for k in required if k in props]}
    if closed:
        schema["additionalProperties"] = False
    return schema


varied_schemas = st.recursive(
    st.sampled_from([{"type": "string"}, {"type": "integer"}, {"type": "number"},
                     {"type": "boolean"}, {"type": "null"}, {"enum": ["a", "ab"]},
                     {"enum": ["b", 1]}, {"const": "a"}, {}, {"type": ["string", "null"]}]),
    lambda inner: st.builds(lambda s: {"type": "array", "items": s}, inner)
    | st.builds(_object, st.dictionaries(st.sampled_from(["a", "b", "ab"]), inner, max_size=3),
                st.lists(st.sampled_from(["a", "b", "ab"]), max_size=3), st.booleans())
    | st.builds(lambda a, b: {"anyOf": [a, b]}, inner, inner),
    max_leaves=8,
)
varied_schemas = varied_schemas | varied_schemas.map(
    lambda d: {"$defs": {"D": d}, "$ref": "#/$defs/D"})


@settings(max_examples=300, deadline=None)
@given(varied_schemas, json_values, st.lists(st.integers(0, 10**6), max_size=6))
def test_checking_part_by_part_agrees_with_checking_the_whole(
    schema: dict[str, Any], value: Any, cuts: list[int]
) -> None:
    for candidate in (value, instance_of(schema, "a b")):
        text = json.dumps(candidate)
        assert _fits_part_by_part(text, schema, cuts) == _fits_whole(candidate, schema), (
            candidate)
