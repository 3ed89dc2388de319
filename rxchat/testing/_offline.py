"""The offline model: a deterministic stand-in that shows the conversation is kept.

It is not a language model. It reads the messages it was sent and answers from them:
it repeats what the user just said, counts the turns it can see, and recalls facts the
user stated earlier ("my name is ...", "I like ..."), so a person can see that each
request carries the whole conversation.
"""

from __future__ import annotations

import re
from typing import Any

from ._replies import RecordedRequest, Reply

__all__ = ["offline_answer", "offline_reply"]

_END = r"(?=[.,;!?]|\s+and\s|\s+but\s|$)"
_FACTS = (
    (re.compile(r"\bmy name is ([\w' -]{1,40}?)" + _END, re.I), "your name is {}"),
    (re.compile(r"\bi (?:like|love) ([\w' -]{1,40}?)" + _END, re.I), "you like {}"),
    (re.compile(r"\bi live in ([\w' -]{1,40}?)" + _END, re.I), "you live in {}"),
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


def offline_reply(request: RecordedRequest, *, delay: float = 0.0) -> Reply:
    """The offline model's :class:`Reply` to a chat request.

    With ``"stream": true``, :func:`offline_answer` streamed word by word (``delay``
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
    answer = offline_answer(request.messages)
    prompt = sum(len(_text(m)) for m in request.messages) // 4 + 1
    completion = len(answer.split())
    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
             "total_tokens": prompt + completion}
    if body.get("stream") is True:
        return Reply.text(answer, usage=usage, delay=delay)
    return Reply.json_body({
        "id": "chatcmpl-rxchat", "object": "chat.completion", "created": 0,
        "model": str(body.get("model") or "rxchat-offline"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": answer}}],
        "usage": usage,
    })
