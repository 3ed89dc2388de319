"""ReplyLog: the cached merge of the reply in flight equals merging the deltas afresh."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rxchat import FunctionCall, Message, ToolCall, Usage
from rxchat._session.state import ReplyLog
from rxchat.operators import merge_deltas

texts = st.none() | st.text(max_size=5)
calls = st.lists(
    st.builds(
        ToolCall,
        index=st.integers(0, 2),
        id=st.none() | st.sampled_from(["a", "b"]),
        function=st.builds(FunctionCall, name=st.none() | st.just("f"),
                           arguments=st.text(max_size=4)),
    ),
    max_size=2,
).map(tuple)
deltas = st.builds(
    Message,
    content=texts,
    reasoning_content=texts,
    name=st.none() | st.just("n"),
    tool_calls=calls,
    finish_reason=st.none() | st.sampled_from(["stop", "tool_calls"]),
    usage=st.none() | st.builds(Usage, total_tokens=st.integers(0, 9)),
)


@given(st.lists(deltas, min_size=1, max_size=30), st.lists(st.integers(1, 30), max_size=12))
def test_any_order_of_reads_gives_the_merge_of_that_prefix(
    stream: list[Message], reads: list[int]
) -> None:
    log = ReplyLog()
    for count, delta in enumerate(stream):
        assert log.appended(count, delta) is log
    for count in [*reads, len(stream)]:
        count = min(count, len(stream))
        assert log.merged(count) == merge_deltas(stream[:count])


def test_a_kept_snapshot_is_never_changed_by_later_deltas() -> None:
    log = ReplyLog()
    log.appended(0, Message(content="He"))
    kept = log.merged(1)
    log.appended(1, Message(content="llo"))
    assert log.merged(2).content == "Hello" and kept.content == "He"
