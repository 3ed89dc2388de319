"""The whole performance suite in one command: table, JSON and (with matplotlib) a plot.

1. Throughput in two server shapes (one HTTP chunk per event; 64 KiB writes) and both
   framings, against the limit parsing with rxchat's JSON parser, with orjson and
   (in a child process that cannot import it) without: ``stream_throughput.py``.
2. Latency p50/p99: ``stream_throughput.py``. 3. Cancellation: ``scenarios.py``.
4. Concurrency: 500 streams (``scenarios.py``) and 2,000 streams against an asyncio
   server in its own process, as they come and all held open together (``scale.py``).
5. Session cost: ``session_overhead.py``. 6. First token per session turn over TLS,
   kept vs new connection: ``tls_turns.py`` (needs ``trustme``).
7. Memory: 500 idle streams, a 1 MB reply, a 1,000-turn session: ``scenarios.py``,
   ``footprint.py``.

Run ``python benchmarks/run_all.py`` (about 10 minutes on 2 cores; ``--quick`` for a
smoke run). Results go to ``--json`` (default ``benchmarks/results.json``) and the plot
to ``--plot`` (default ``docs/performance.png``); without matplotlib the plot is skipped
and said so. ``--before JSON`` puts an earlier run (e.g. the old code, see the README)
in the table's "before" column. Nothing here asserts a timing. All traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import footprint
import scale
import scenarios
import session_overhead
import stream_throughput as st
import tls_turns
from report import print_table

import rxchat

ROOT = Path(__file__).resolve().parent.parent
FRAMINGS = ("chunked", "close")


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"chunks": 40, "rounds": 1, "latency": 5, "cancel": 1, "streams": 5,
                "stream_events": 3, "gap": 0.005, "reply": 10_000, "session": (100, 1_000),
                "history": (10, 100), "turns": 3, "repeat": 1, "scale": (10, 5, 0.02),
                "idle": 5, "session_turns": 5, "tls_turns": 3}
    return {"chunks": 20_000, "rounds": 5, "latency": 200, "cancel": 10, "streams": 500,
            "stream_events": 100, "gap": 0.04, "reply": 1_000_000,
            "session": (1_000, 10_000, 100_000), "history": (10, 1_000), "turns": 30,
            "repeat": 3, "scale": (2_000, 50, 0.02), "idle": 500, "session_turns": 1_000,
            "tls_turns": 30}


def run_streams(size: dict[str, Any], names: list[str], log: TextIO) -> dict[str, Any]:
    """Throughput (every mode), latency and cancellation."""
    events, content = st.build_events(size["chunks"])
    with st.BenchServer(events, size["latency"], 0.002) as server:
        rates = st.run_throughput(server, names, size["rounds"], (size["chunks"], content), log)
        latency = st.run_latency(server, size["rounds"])
    result = st.summarise(rates, latency)
    cancel = {f: scenarios.measure_cancel(f, size["cancel"]) for f in FRAMINGS}
    result["cancel"] = scenarios.summarise_cancel(cancel)
    return result


def run_without_orjson(size: dict[str, Any], names: list[str]) -> dict[str, Any] | str:
    """The throughput table again in a child process where orjson cannot be imported,
    so that rxchat and the limit both parse with ``json.loads``; or why it was skipped."""
    if not st.FAST:
        return "orjson is not installed: the main table is the json.loads one"
    wanted = [n for n in names if n in ("raw", "socket", "urllib3", "rxchat", "openai")]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stdlib.json"
        done = subprocess.run(
            [sys.executable, st.__file__, "--chunks", str(size["chunks"]), "--rounds",
             str(size["rounds"]), "--latency-events", "0", "--only", *wanted,
             "--json", str(path)],
            env={**os.environ, st.NO_ORJSON: "1"}, capture_output=True, text=True,
            timeout=1800, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the json.loads run failed:\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return result


def run_children(size: dict[str, Any]) -> dict[str, Any]:
    """Concurrency and memory, each in a child process against a server in this one."""
    piece = "0123456789"
    count = size["reply"] // len(piece)
    body = [f"data: {st._chunk_json({'content': piece})}\n\n".encode()] * count
    body += [f"data: {st._chunk_json({}, 'stop')}\n\n".encode(), b"data: [DONE]\n\n"]
    # Paced streams (``stream_events`` events ``gap`` apart) so that all are open at once.
    with st.BenchServer(body, size["stream_events"], size["gap"]) as server:
        concurrency = scenarios.run_child(
            "concurrency", server.base_url("latency-chunked"),
            str(size["streams"]), str(size["stream_events"] + 1),
        )
        memory = {
            how: scenarios.run_child(
                "memory", server.base_url("chunked"), str(size["reply"]), how
            )
            for how in ("content", "final_message")
        }
    turn_events, _ = st.build_events(12)
    with st.BenchServer(turn_events, 1, 0.0) as server:
        memory["session"] = footprint.run(
            "session", server.base_url("chunked"), str(size["session_turns"]))
    silent = scenarios.SilentServer("chunked")
    try:
        memory["idle"] = footprint.run("idle", silent.base_url, str(size["idle"]))
    finally:
        silent.close()
    return {"concurrency": concurrency, "memory": memory}


def run_session(size: dict[str, Any]) -> dict[str, Any]:
    """Session per-delta and per-turn cost (``session_overhead.py``), best of repeats."""
    repeat = size["repeat"]
    def per_delta_when(read: str) -> dict[str, float]:
        timed = session_overhead.time_per_delta
        return {str(n): session_overhead.best(timed, n, read, repeat=repeat) * 1e6
                for n in size["session"]}

    per_delta, reading_partial = per_delta_when("delta"), per_delta_when("partial")
    per_turn = {
        str(h): session_overhead.best(
            session_overhead.time_per_turn, h, size["turns"], repeat=repeat
        ) * 1e3
        for h in size["history"]
    }
    values = list(reading_partial.values())
    return {"us_per_delta": per_delta, "us_per_delta_reading_partial": reading_partial,
            "ms_per_turn": per_turn, "flatness": max(values) / min(values)}


def run_tls(size: dict[str, Any]) -> dict[str, Any] | str:
    """First token per session turn over TLS, or why it was skipped."""
    if not st._installed("trustme"):
        return "trustme is not installed (pip install -e '.[bench]')"
    return tls_turns.measure(size["tls_turns"])


def _bars(ax: Any, groups: list[str], series: dict[str, list[float]]) -> None:
    """Side-by-side bars: one group per x position, one colour per series."""
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=label)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups,
                  rotation=30, ha="right")


def plot(results: dict[str, Any], path: str, before: dict[str, Any] | None = None) -> str:
    """Four panels: throughput vs the limit, latency, cancellation and session cost.

    Returns:
        What was done: the path written, or why the plot was skipped.
    """
    try:
        import matplotlib
    except ImportError:
        return ("plot skipped: matplotlib is not installed "
                "(pip install -e '.[bench]' to draw it)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ((tput, lat), (cancel, session)) = plt.subplots(2, 2, figsize=(11, 8))
    modes = list(results["throughput"])
    series = {"rxchat": [results["throughput"][m]["rxchat"].get("vs_raw", 0) for m in modes]}
    stdlib = results.get("without_orjson")
    if isinstance(stdlib, dict):
        series["rxchat, json.loads"] = [
            stdlib["throughput"][m]["rxchat"].get("vs_raw", 0) for m in modes]
    if before is not None:
        series["rxchat (before)"] = [
            before["throughput"].get(m, {}).get("rxchat", {}).get("vs_raw", 0) for m in modes]
    _bars(tput, modes, series)
    tput.axhline(0.85, color="red", linestyle="--", label="target")
    tput.set(title="Throughput / the limit (same JSON parser)", ylabel="x the limit")
    latency = results["latency"]
    _bars(lat, list(latency), {q: [latency[f][f"{q}_us"] / 1000 for f in latency]
                               for q in ("p50", "p99")})
    lat.set(title="Latency, server write -> on_next (ms)", ylabel="ms")
    stops = results["cancel"]
    _bars(cancel, list(stops), {f"{k} (max)": [stops[f][f"{k}_ms_max"] for f in stops]
                                for k in ("thread", "server")})
    cancel.axhline(50, color="red", linestyle="--", label="target")
    cancel.set(title="Cancellation: dispose -> reader/server (ms, log)", ylabel="ms",
               yscale="log", ylim=(0.01, 200))
    per = results["session"]["us_per_delta"]
    session.plot([int(k) for k in per], list(per.values()), marker="o")
    session.set(xscale="log", title="Session cost per delta (µs)", xlabel="deltas per reply",
                ylabel="µs/delta", ylim=(0, max(per.values()) * 1.5))
    for ax in (tput, lat, cancel):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return f"wrote {path}"


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    """Run the suite; print the table; write JSON and the plot; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "performance.png"))
    parser.add_argument("--before", metavar="JSON", help="earlier results for the table")
    args = parser.parse_args(argv)
    size = _sizes(args.quick)
    names = [n for n, (_c, mod) in st.CONSUMERS.items() if mod is None or st._installed(mod)]
    print(f"Python {platform.python_version()}, rxchat {rxchat.__version__} from "
          f"{Path(rxchat.__file__).parent}; JSON: {st.JSON_NAME}; consumers: "
          f"{', '.join(names)}", file=out)
    log = io.StringIO() if args.quick else out
    results = run_streams(size, names, log)
    results["without_orjson"] = run_without_orjson(size, names)
    results.update(run_children(size))
    streams, events, gap = size["scale"]
    results["scale"] = scale.run(streams, events, gap)
    results["scale_together"] = scale.run(streams, events, gap, together=True)
    results["session"] = run_session(size)
    results["tls_turns"] = run_tls(size)
    results["config"] = {"chunks": size["chunks"], "rounds": size["rounds"],
                         "python": platform.python_version(), "consumers": names,
                         "json": st.JSON_NAME, "cpus": os.cpu_count()}
    before = json.loads(Path(args.before).read_text("utf-8")) if args.before else None
    print_table(results, before, out)
    Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nwrote {args.json}; {plot(results, args.plot, before)}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
