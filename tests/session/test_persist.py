"""ChatSession.save / load: a versioned JSON file, written atomically, read back strictly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import ChatSession, FunctionCall, Message, ToolCall, Usage
from rxchat.errors import ConfigurationError, RxChatError, SessionError, SessionFileError
from rxchat.testing import ScriptedCompletion

HISTORY = (
    Message(role="system", content="S"),
    Message(role="user", content="weather in Zürich?"),
    Message(content=None, reasoning_content="need a tool", finish_reason="tool_calls",
            tool_calls=(ToolCall(id="c1", function=FunctionCall("get", '{"city":"Z"}')),)),
    Message(role="tool", content="sunny", tool_call_id="c1"),
    Message(content="Sunny.", finish_reason="stop", usage=Usage(3, 2, 5)),
)


def saved_session(**options: Any) -> ChatSession:
    return ChatSession(model="m", params={"temperature": 0.2}, context_window=999,
                       history=HISTORY, **options)


def test_a_saved_session_loads_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    saved_session().save(path)
    document = json.loads(path.read_text("utf-8"))
    assert (document["format"], document["version"]) == ("rxchat.session", 1)

    scheduler = TestScheduler()
    reply = scheduler.create_cold_observable(
        ReactiveTest.on_next(10, Message(content="ok")), ReactiveTest.on_completed(20)
    )
    complete = ScriptedCompletion(reply)
    loaded = ChatSession.load(path, complete=complete, scheduler=scheduler)
    assert loaded.messages == HISTORY
    assert (loaded.model, loaded.params, loaded.context_window) == ("m", {"temperature": 0.2}, 999)
    loaded.on_next("and tomorrow?")
    scheduler.start()
    assert len(complete.calls[0]["messages"]) == len(HISTORY) + 1
    assert ChatSession.load(path, model="other").model == "other"


def test_saving_replaces_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text("old")
    saved_session().save(path)
    assert ChatSession.load(path).messages == HISTORY
    assert os.listdir(tmp_path) == ["chat.json"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"format": "rxchat.session", "version": 1, "messages": [', "not valid JSON"),
        ("", "not valid JSON"),
        ('["a list"]', "not an rxchat session"),
        ('{"format": "rxchat.session", "version": 99, "messages": []}', "version 99"),
        ('{"format": "rxchat.session", "version": 1, "messages": [1]}', "messages"),
        ('{"format": "rxchat.session", "version": 1, "messages": [], "params": 3}', "params"),
    ],
)
def test_a_bad_file_is_refused_naming_it(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SessionFileError, match=problem) as caught:
        ChatSession.load(path)
    assert str(path) in str(caught.value) and caught.value.path == str(path)
    assert isinstance(caught.value, SessionError | ConfigurationError | RxChatError)
    assert path.read_text() == text


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SessionFileError, match="could not be read"):
        ChatSession.load(tmp_path / "nope.json")


def crash(*_args: Any, **_kwargs: Any) -> None:
    raise OSError("disk on fire")


def test_a_crash_while_renaming_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "chat.json"
    ChatSession(system="old").save(path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(SessionFileError, match="disk on fire"):
        saved_session().save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["chat.json"]


def test_a_crash_while_writing_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "chat.json"
    ChatSession(system="old").save(path)
    before = path.read_bytes()

    def half_then_crash(obj: Any, file: Any, **_kwargs: Any) -> None:
        file.write('{"format": "rxchat.sess')
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dump", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        saved_session().save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["chat.json"]


def test_params_that_are_not_json_are_refused_before_anything_is_replaced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.json"
    ChatSession(system="old").save(path)
    with pytest.raises(SessionFileError, match="could not be saved"):
        ChatSession(params={"stop": object()}).save(path)
    assert ChatSession.load(path).messages == (Message(role="system", content="old"),)
    assert os.listdir(tmp_path) == ["chat.json"]


def test_saving_into_a_missing_directory_is_a_session_file_error(tmp_path: Path) -> None:
    from rxchat import ChatSession

    target = tmp_path / "missing" / "chat.json"
    with pytest.raises(SessionFileError, match="could not be saved") as caught:
        ChatSession(system="S").save(target)
    assert caught.value.path == str(target)
    assert not target.parent.exists()
