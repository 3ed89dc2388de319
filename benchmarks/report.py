"""The table of ``run_all.py``: every item, its target, and the figures before and after.

"Before" is an earlier results JSON (``--before``), typically the same suite run on the
old code; a figure it does not have shows as ``-``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

import stream_throughput as st

Row = tuple[str, str, Callable[[dict[str, Any]], str]]


def _get(results: dict[str, Any] | None, *path: str) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _fmt(spec: str, *path: str) -> Callable[[dict[str, Any]], str]:
    def cell(results: dict[str, Any]) -> str:
        value = _get(results, *path)
        return "-" if value is None else format(value, spec)

    return cell


def _pair(spec: str, a: tuple[str, ...], b: tuple[str, ...]) -> Callable[[dict[str, Any]], str]:
    def cell(results: dict[str, Any]) -> str:
        x, y = _get(results, *a), _get(results, *b)
        return "-" if x is None or y is None else f"{x:{spec}} / {y:{spec}}"

    return cell


def _scale_rows(key: str, title: str) -> list[Row]:
    return [
        (f"{title}: completed / errors", "all",
         _pair("d", (key, "completed"), (key, "errors"))),
        ("    wall / ideal", "<= 1.5x", _fmt(".2f", key, "vs_ideal")),
        ("    subscribing all (s) / streaming (s)", "",
         _pair(".2f", (key, "subscribe_s"), (key, "streaming_s"))),
        ("    peak threads / peak RSS (MB)", "",
         _pair(".0f", (key, "peak_threads"), (key, "peak_rss_mb"))),
        ("    write -> on_next p50 / p99 (ms)", "",
         _pair(".1f", (key, "latency_ms", "p50"), (key, "latency_ms", "p99"))),
        ("    client CPU user / sys (s)", "",
         _pair(".1f", (key, "cpu_user_s"), (key, "cpu_sys_s"))),
    ]


def _rows() -> list[Row]:
    rows: list[Row] = []
    for mode in st.MODES:
        shape = "64 KiB writes" if mode.startswith("64k") else "chunk per event"
        framing = mode.removeprefix("64k-")
        name = f"1 {framing}, {shape}"
        rows += [
            (f"{name}: deltas/s", "", _fmt(",.0f", "throughput", mode, "rxchat", "median")),
            ("    vs the limit, orjson", ">= 0.85x",
             _fmt(".2f", "throughput", mode, "rxchat", "vs_raw")),
            ("    vs the limit, json.loads", ">= 0.85x",
             _fmt(".2f", "without_orjson", "throughput", mode, "rxchat", "vs_raw")),
            ("    vs openai SDK", "", _fmt(".1f", "throughput", mode, "rxchat", "vs_openai")),
        ]
    for framing in ("chunked", "close"):
        rows.append((f"2 latency p50 / p99 (us), {framing}", "",
                     _pair(".0f", ("latency", framing, "p50_us"),
                           ("latency", framing, "p99_us"))))
    for framing in ("chunked", "close"):
        rows.append((f"3 dispose -> reader ended, max (ms), {framing}", "<= 50",
                     _fmt(".2f", "cancel", framing, "thread_ms_max")))
    rows += [
        ("4 500 streams: completed / errors", "all",
         _pair("d", ("concurrency", "completed"), ("concurrency", "errors"))),
        ("    wall (s)", "", _fmt(".2f", "concurrency", "wall_s")),
        ("    peak threads", "", _fmt("d", "concurrency", "peak_threads")),
        *_scale_rows("scale", "4 2,000 x 1 s streams, as they come"),
        *_scale_rows("scale_together", "4 the same, all open before the first delta"),
        ("5 session us/delta, 1k / 100k deltas", "flat",
         _pair(".1f", ("session", "us_per_delta", "1000"),
               ("session", "us_per_delta", "100000"))),
        ("5 session us/delta reading partial, 1k / 100k", "flat",
         _pair(".1f", ("session", "us_per_delta_reading_partial", "1000"),
               ("session", "us_per_delta_reading_partial", "100000"))),
        ("5 session ms/turn, 10 / 1,000 turns", "",
         _pair(".2f", ("session", "ms_per_turn", "10"), ("session", "ms_per_turn", "1000"))),
        ("6 TLS first token p50 (ms), kept / new", "",
         _pair(".2f", ("tls_turns", "keep-alive", "first_token_ms_p50"),
               ("tls_turns", "close", "first_token_ms_p50"))),
        ("    connections per turn, kept / new", "kept < 1",
         _pair(".2f", ("tls_turns", "keep-alive", "connections_per_turn"),
               ("tls_turns", "close", "connections_per_turn"))),
        ("7 peak RSS (MB), 500 idle streams", "",
         _fmt(".0f", "memory", "idle", "peak_rss_mb")),
        ("7 peak RSS (MB), 1 MB reply, final_message()", "",
         _fmt(".0f", "memory", "final_message", "peak_rss_mb")),
        ("7 peak RSS (MB), 1 MB reply, content()", "",
         _fmt(".0f", "memory", "content", "peak_rss_mb")),
        ("7 peak RSS (MB), 1,000-turn session", "",
         _fmt(".0f", "memory", "session", "peak_rss_mb")),
        ("    ms per turn, first / last 10 turns", "",
         _pair(".1f", ("memory", "session", "first_turns_ms"),
               ("memory", "session", "last_turns_ms"))),
    ]
    return rows


def print_table(results: dict[str, Any], before: dict[str, Any] | None, out: TextIO) -> None:
    """The detailed throughput tables, then one line per figure with its target."""
    config = results["config"]
    st.print_report(results, config["chunks"], config["rounds"], out)
    stdlib = results.get("without_orjson")
    if isinstance(stdlib, dict):
        print("\nThe same without orjson (a child process; rxchat and the limit both use "
              "json.loads):", end="", file=out)
        st.print_report(stdlib, config["chunks"], config["rounds"], out)
    elif stdlib:
        print(f"\nWithout orjson: skipped, {stdlib}", file=out)
    for key in ("tls_turns",):
        if isinstance(results.get(key), str):
            print(f"\n{key}: skipped, {results[key]}", file=out)
    header = f"{'item':<52} {'target':<9} {'before':>15} {'after':>15}"
    print(f"\n{header}\n{'-' * len(header)}", file=out)
    for label, target, cell in _rows():
        old = cell(before) if before is not None else "-"
        print(f"{label:<52} {target:<9} {old:>15} {cell(results):>15}", file=out)
