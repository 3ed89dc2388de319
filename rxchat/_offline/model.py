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
"""

from __future__ import annotations

import json
import re
from typing import Any

from .._structured.instance import instance_of
from .replies import RecordedRequest, Reply

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
    messages: list[dict[str, Any]], tools: Any
) -> dict[str, Any] | None:
    """The tool call the offline model makes, or None (it answers in text).

    Args:
        messages: The request's messages, oldest first.
        tools: The request's `tools` field.

    Returns:
        `{"id", "name", "arguments"}` when the last message is the user's and names
        an offered tool (the earliest named); else None.
    """
    names = [t["function"]["name"] for t in tools or () if isinstance(t, dict)
             and isinstance(t.get("function"), dict) and t["function"].get("name")]
    if not messages or not names or messages[-1].get("role") != "user":
        return None
    text = _text(messages[-1])
    found = [(m.start(), m.end(), n) for n in names
             if (m := re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", text))]
    if not found:
        return None
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
    """The offline model's `Reply` to a chat request.

    With ``"stream": true``, `offline_answer` streamed word by word (``delay``
    seconds apart) with a usage chunk; otherwise one ``chat.completion`` JSON object,
    as OpenAI answers a non-streamed request. A body that is not a JSON object with a
    ``messages`` list is a 400 in OpenAI's error shape.
    """

    body = request.json
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return Reply.error(400, {"error": {
            "message": "The request body must be a JSON object with a 'messages' list.",
            "type": "invalid_request_error",
        }})
    call = offline_tool_call(request.messages, body.get("tools"))
    structured = None if call else structured_answer(body.get("response_format"),
                                                      request.messages)
    answer = "" if call else structured or _tool_answer(request.messages) or offline_answer(
        request.messages)
    prompt = sum(len(_text(m)) for m in request.messages) // 4 + 1
    completion = len(answer.split()) + (1 if call else 0)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
             "total_tokens": prompt + completion}
    stream = body.get("stream") is True
    if call is not None and stream:
        return Reply.tool_calls([call])
    if stream:
        pieces = -(-len(answer) // _JSON_PIECE) if structured else None
        return Reply.text(answer, usage=usage, delay=delay, pieces=pieces)
    message: dict[str, Any] = {"role": "assistant", "content": answer or None}
    if call is not None:
        message["tool_calls"] = [{"id": call["id"], "type": "function", "function": {
            "name": call["name"], "arguments": call["arguments"]}}]
    return Reply.json_body({
        "id": "chatcmpl-rxchat", "object": "chat.completion", "created": 0,
        "model": str(body.get("model") or "rxchat-offline"),
        "choices": [{"index": 0, "finish_reason": "tool_calls" if call else "stop",
                     "message": message}],
        "usage": usage,
    })
