"""The offline model: a deterministic stand-in that shows the conversation is kept.

It is not a language model. It reads the messages it was sent and answers from them:
it repeats what the user just said, counts the turns it can see, and recalls facts the
user stated earlier ("my name is ...", "I like ..."), so a person can see that each
request carries the whole conversation.

When the request offers `tools` and the user's message names one, it calls that tool
(arguments: the JSON object written after the name, if any, else `{}`); when the
request ends with tool results, it answers with them. So the tool loop works without
a key: "use add {"a": 2, "b": 3}" → a call of `add` → "The add tool returned: 5.".

When the request asks for a ``json_schema`` response format, it answers with JSON that
fits the schema (`rxchat._structured.instance.instance_of`, from the user's words),
streamed a few characters at a time.

A `tool_choice` of `"none"`, `"required"` or one named function is honoured.

Its replies are shaped as OpenAI's (`offline_reply`), so real clients (the OpenAI SDK,
LangChain) can be pointed at `rxchat serve` unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .._structured.instance import instance_of
from .replies import RecordedRequest, Reply, chunk

__all__ = ["offline_answer", "offline_reply", "offline_tool_call"]

_END = r"(?=[.,;!?]|\s+and\s|\s+but\s|$)"
_FACT = r"([^.,;!?\n]{1,40}?)"  # any words, emoji included, up to the sentence's end
_FACTS = (
    (re.compile(r"\bmy name is " + _FACT + _END, re.I), "your name is {}"),
    (re.compile(r"\bi (?:like|love) " + _FACT + _END, re.I), "you like {}"),
    (re.compile(r"\bi live in " + _FACT + _END, re.I), "you live in {}"),
)


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def offline_answer(messages: list[dict[str, Any]]) -> str:
    """The offline model's answer to a conversation.

    Args:
        messages: The request's messages, oldest first.

    Returns:
        A reply that quotes the last user message and recalls earlier facts.
    """
    users = [_text(m) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return "Hello! I am rxchat's offline model. Say something and I will keep track."
    last = users[-1].strip()
    facts: list[str] = []
    for earlier in users[:-1]:
        for pattern, template in _FACTS:
            for match in pattern.finditer(earlier):
                fact = template.format(match.group(1).strip())
                if fact not in facts:
                    facts.append(fact)
    turn = len(users)
    parts = [f'You said: "{last}".']
    if turn == 1:
        parts.append("This is the first turn of our conversation.")
    else:
        parts.append(f"This is turn {turn}; earlier you said \"{users[-2].strip()}\".")
    if facts:
        parts.append("I remember that " + ", and ".join(facts) + ".")
    system = next((_text(m) for m in messages if m.get("role") == "system"), "")
    if system:
        parts.append(f"(System prompt: {system[:60]})")
    return " ".join(parts)


def offline_tool_call(
    messages: list[dict[str, Any]], tools: Any, tool_choice: Any = None,
) -> dict[str, Any] | None:
    """The tool call the offline model makes, or None (it answers in text).

    Args:
        messages: The request's messages, oldest first.
        tools: The request's `tools` field.
        tool_choice: The request's `tool_choice`: `"auto"` (or None) calls a tool the
            message names, `"none"` never calls one, `"required"` calls the named one
            or else the first offered, and `{"type": "function", "function": {"name":
            ...}}` calls that one.

    Returns:
        `{"id", "name", "arguments"}` when the last message is the user's and names
        an offered tool (the earliest named) or `tool_choice` forces one; else None.
        The arguments are the JSON object written after the tool's name, or `{}`.
    """
    names = _tool_names(tools)
    if not messages or not names or messages[-1].get("role") != "user" or tool_choice == "none":
        return None
    forced = _forced_name(tool_choice)
    if forced is not None:
        names = [n for n in names if n == forced]
        if not names:
            return None
    text = _text(messages[-1])
    found = [(m.start(), m.end(), n) for n in names
             if (m := re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", text))]
    if not found:
        if forced is None and tool_choice != "required":
            return None
        found = [(0, 0, names[0])]
        text = ""
    _start, end, name = min(found)
    arguments: Any = {}
    rest = text[end:].lstrip(" :=(")
    if rest.startswith("{"):
        try:
            arguments, _ = json.JSONDecoder().raw_decode(rest)
        except json.JSONDecodeError:
            arguments = rest.split("\n")[0]  # sent as written: the model got it wrong
    text_args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": f"call_{len(messages)}", "name": name, "arguments": text_args}


def _tool_answer(messages: list[dict[str, Any]]) -> str | None:
    """The answer to a request ending with tool results, or None."""
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(message)
    if not results:
        return None
    calls = {c.get("id"): (c.get("function") or {}).get("name")
             for m in messages if m.get("role") == "assistant"
             for c in m.get("tool_calls") or () if isinstance(c, dict)}
    parts = [f"The {calls.get(r.get('tool_call_id')) or 'tool'} tool returned: {_text(r)}"
             for r in reversed(results)]
    return ". ".join(p.rstrip(".") for p in parts) + "."


def structured_answer(response_format: Any, messages: list[dict[str, Any]]) -> str | None:
    """The JSON answer to a ``json_schema`` (or ``json_object``) response format, or None."""
    if not isinstance(response_format, dict):
        return None
    users = [_text(m) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    words = users[-1] if users else ""
    inner = response_format.get("json_schema")
    if response_format.get("type") == "json_schema" and isinstance(inner, dict) and isinstance(
        inner.get("schema"), dict
    ):
        return json.dumps(instance_of(inner["schema"], words), ensure_ascii=False)
    if response_format.get("type") == "json_object":
        return json.dumps({"reply": offline_answer(messages)}, ensure_ascii=False)
    return None


_JSON_PIECE = 6
"""Characters per delta of a JSON answer: small, so it is seen growing."""


def offline_reply(request: RecordedRequest, *, delay: float = 0.0) -> Reply:
    """The offline model's `Reply` to a chat request, shaped as OpenAI answers it.

    With ``"stream": true``, `offline_answer` streamed word by word (``delay``
    seconds apart), ending with a usage chunk (``choices: []``) only when
    ``stream_options.include_usage`` asks for one; otherwise one ``chat.completion``
    JSON object. Every chunk and the completion name the requested ``model``; ``n``
    gives that many (identical) choices; a ``tool_choice`` of ``"none"``,
    ``"required"`` or one named function is honoured when the last message is the
    user's. A request OpenAI would refuse (no ``messages`` list, an empty one, a bad
    ``n`` or ``tool_choice``) is a 400 in OpenAI's error shape.
    """

    body = request.json
    problem = _invalid(body)
    if problem is not None:
        return _bad_request(*problem)
    assert isinstance(body, dict)
    model = str(body.get("model") or "rxchat-offline")
    choices = int(body.get("n") or 1)
    call = offline_tool_call(request.messages, body.get("tools"), body.get("tool_choice"))
    structured = None if call else structured_answer(body.get("response_format"),
                                                      request.messages)
    answer = "" if call else structured or _tool_answer(request.messages) or offline_answer(
        request.messages)
    prompt = sum(len(_text(m)) for m in request.messages) // 4 + 1
    completion = (len(answer.split()) + (1 if call else 0)) * choices
    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
             "total_tokens": prompt + completion}
    if body.get("stream") is True:
        options = body.get("stream_options")
        wanted = isinstance(options, dict) and options.get("include_usage") is True
        pieces = -(-len(answer) // _JSON_PIECE) if structured else None
        return _streamed(answer, call, model=model, choices=choices,
                         usage=usage if wanted else None, delay=delay, pieces=pieces)
    message: dict[str, Any] = {"role": "assistant", "content": answer or None}
    if call is not None:
        message["tool_calls"] = [{"id": call["id"], "type": "function", "function": {
            "name": call["name"], "arguments": call["arguments"]}}]
    return Reply.json_body({
        "id": "chatcmpl-rxchat", "object": "chat.completion", "created": 0,
        "model": model,
        "choices": [{"index": index, "finish_reason": "tool_calls" if call else "stop",
                     "message": message, "logprobs": None} for index in range(choices)],
        "usage": usage,
    })


MAX_CHOICES = 128
"""The largest ``n`` the offline model answers (OpenAI's own limit)."""


def _invalid(body: Any) -> tuple[str, str | None] | None:
    """Why OpenAI would refuse this request body (message, the field), or None."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return "The request body must be a JSON object with a 'messages' list.", "messages"
    if not body["messages"]:
        return "Invalid 'messages': empty array. Expected an array with minimum length 1, " \
            "but got an empty array instead.", "messages"
    for number, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return (f"Invalid 'messages[{number}]': expected an object with a 'role', got "
                    f"{json.dumps(message)[:60]}.", f"messages[{number}]")
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)
                          or not 1 <= n <= MAX_CHOICES):
        return f"Invalid 'n': {n!r}; give a whole number from 1 to {MAX_CHOICES}.", "n"
    choice = body.get("tool_choice")
    if choice is None or choice in ("auto", "none"):
        return None
    if not _tool_names(body.get("tools")):
        return ("Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                "'tools' are specified.", "tool_choice")
    if choice == "required":
        return None
    name = _forced_name(choice)
    if name is None:
        return (f"Invalid 'tool_choice': {choice!r}; give 'auto', 'none', 'required' or "
                "{'type': 'function', 'function': {'name': ...}}.", "tool_choice")
    if name not in _tool_names(body.get("tools")):
        return (f"Invalid 'tool_choice': the function {name!r} is not in 'tools'.",
                "tool_choice")
    return None


def _bad_request(message: str, param: str | None) -> Reply:
    return Reply.error(400, {"error": {
        "message": message, "type": "invalid_request_error", "param": param, "code": None,
    }})


def _forced_name(choice: Any) -> str | None:
    """The function a ``tool_choice`` object names, or None."""
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) and name else None


def _tool_names(tools: Any) -> list[str]:
    return [t["function"]["name"] for t in tools or () if isinstance(t, dict)
            and isinstance(t.get("function"), dict) and t["function"].get("name")]


def _streamed(
    answer: str, call: dict[str, Any] | None, *, model: str, choices: int,
    usage: dict[str, Any] | None, delay: float, pieces: int | None = None,
) -> Reply:
    """The chunks of a streamed reply: each choice's pieces, in turn, then the usage."""
    chunks: list[dict[str, Any]] = []
    for index in range(choices):
        one = Reply.tool_calls([call]) if call is not None else Reply.text(answer, pieces=pieces)
        for part in one.parts:
            if isinstance(part, bytes) and part.startswith(b"data: {"):
                event = json.loads(part[len(b"data: "):])
                event["model"] = model
                for choice in event["choices"]:
                    choice["index"] = index
                chunks.append(event)
    if usage is not None:
        chunks.append(chunk(usage=usage, choices=False, model=model))
    return Reply.events(chunks, delay=delay)
