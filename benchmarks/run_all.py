"""The whole performance suite of issue 6 in one command: table, JSON and PNG plot.

1. Throughput (both framings) and 2. latency p50/p99: ``stream_throughput.py``.
3. Cancellation on a silent server, 4. concurrency (500 streams) and 6. memory (a 1 MB
   reply): ``scenarios.py``. 5. Session cost: ``session_overhead.py``. 7. First delta
   of turn 2 on a session over TLS, reused vs new connection: ``tls_reuse.py``.

Run ``python benchmarks/run_all.py`` (about 5 minutes on 2 cores; ``--quick`` for a
smoke run). Results go to ``--json`` (default ``benchmarks/results.json``) and the plot
to ``--plot`` (default ``docs/performance.png``). Rounds are interleaved and medians
reported; nothing here asserts a timing. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios
import session_overhead
import stream_throughput as st
import tls_reuse

import rxchat

ROOT = Path(__file__).resolve().parent.parent
FRAMINGS = ("chunked", "close")


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"chunks": 40, "rounds": 1, "latency": 5, "cancel": 1, "streams": 5,
                "stream_events": 3, "gap": 0.005, "reply": 10_000, "session": (100, 1_000),
                "history": (10, 100), "turns": 3, "repeat": 1, "tls_rounds": 2}
    return {"chunks": 20_000, "rounds": 5, "latency": 200, "cancel": 10, "streams": 500,
            "stream_events": 100, "gap": 0.04, "reply": 1_000_000,
            "session": (1_000, 10_000, 100_000), "history": (10, 1_000), "turns": 30,
            "repeat": 3, "tls_rounds": 30}


def run_streams(size: dict[str, Any], names: list[str], log: TextIO) -> dict[str, Any]:
    """Throughput, latency and cancellation, interleaved per framing."""
    events, content = st.build_events(size["chunks"])
    with st.BenchServer(events, size["latency"], 0.002) as server:
        rates = st.run_throughput(server, names, size["rounds"], (size["chunks"], content), log)
        latency = st.run_latency(server, size["rounds"])
    result = st.summarise(rates, latency)
    cancel = {f: scenarios.measure_cancel(f, size["cancel"]) for f in FRAMINGS}
    result["cancel"] = scenarios.summarise_cancel(cancel)
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
    return {"concurrency": concurrency, "memory": memory}


def run_session(size: dict[str, Any]) -> dict[str, Any]:
    """Session per-delta and per-turn cost (``session_overhead.py``), best of repeats."""
    repeat = size["repeat"]
    per_delta = {
        str(n): session_overhead.best(session_overhead.time_per_delta, n, repeat=repeat) * 1e6
        for n in size["session"]
    }
    per_turn = {
        str(h): session_overhead.best(
            session_overhead.time_per_turn, h, size["turns"], repeat=repeat
        ) * 1e3
        for h in size["history"]
    }
    values = list(per_delta.values())
    return {"us_per_delta": per_delta, "ms_per_turn": per_turn,
            "flatness": max(values) / min(values)}


def print_table(results: dict[str, Any], out: TextIO) -> None:
    """The six items, one line each figure."""
    st.print_report(results, results["config"]["chunks"], results["config"]["rounds"], out)
    print("\nCancellation on a silent server, dispose() -> (ms, median / max)", file=out)
    for framing, row in results["cancel"].items():
        print(f"{framing:<8} dispose returns {row['dispose_ms_median']:6.2f} / "
              f"{row['dispose_ms_max']:6.2f}  reader ended {row['thread_ms_median']:6.2f} / "
              f"{row['thread_ms_max']:6.2f}  server saw it {row['server_ms_median']:6.2f} / "
              f"{row['server_ms_max']:6.2f}", file=out)
    c = results["concurrency"]
    print(f"\nConcurrency: {c['completed']}/{c['streams']} streams complete, "
          f"{c['errors']} errors, {c['peak_open_streams']} open at once, wall "
          f"{c['wall_s']:.2f} s, peak threads "
          f"{c['peak_threads']}, peak RSS {c['peak_rss_mb']:.0f} MB "
          f"(before {c['rss_before_mb']:.0f} MB)", file=out)
    s = results["session"]
    print("\nSession: " + ", ".join(f"{k} deltas {v:.2f} µs/delta"
                                    for k, v in s["us_per_delta"].items())
          + f" (max/min {s['flatness']:.2f}x); "
          + ", ".join(f"{k} turns of history {v:.2f} ms/turn"
                      for k, v in s["ms_per_turn"].items()), file=out)
    print("\n" + tls_reuse.describe(results["tls_reuse"]), file=out)
    for how, m in results["memory"].items():
        print(f"\nMemory: a {m['reply_bytes']:,}-byte reply kept via {how}(): peak RSS "
              f"{m['peak_rss_mb']:.0f} MB (before the stream {m['rss_before_mb']:.0f} MB)",
              file=out)


def _bars(ax: Any, groups: list[str], series: dict[str, list[float]]) -> None:
    """Side-by-side bars: one group per x position, one colour per series."""
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=label)
    many = len(groups) > 2
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups,
                  rotation=30 if many else 0, ha="right" if many else "center")


def plot(results: dict[str, Any], path: str, before: dict[str, Any] | None = None) -> None:
    """Four panels: throughput, latency, cancellation and session cost.

    With ``before`` (an earlier results JSON), its rxchat throughput is drawn beside
    the current one as ``rxchat (before)``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ((tput, lat), (cancel, session)) = plt.subplots(2, 2, figsize=(11, 8))
    rows = {f: dict(results["throughput"][f]) for f in FRAMINGS}
    names = list(rows["chunked"])
    if before is not None:
        names.insert(names.index("rxchat"), "rxchat (before)")
        for f in FRAMINGS:
            rows[f]["rxchat (before)"] = before["throughput"][f]["rxchat"]
    _bars(tput, names, {f: [rows[f][n]["median"] / 1000 for n in names] for f in FRAMINGS})
    tput.set(title="Throughput (k deltas/s, median)", ylabel="k deltas/s")
    latency = results["latency"]
    _bars(lat, list(latency), {q: [latency[f][f"{q}_us"] / 1000 for f in latency]
                               for q in ("p50", "p99")})
    lat.axhline(1.0, color="red", linestyle="--", label="target p99")
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


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    """Run the suite; print the table; write JSON and the plot; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "performance.png"))
    parser.add_argument("--before", metavar="JSON", help="earlier results to plot beside")
    args = parser.parse_args(argv)
    size = _sizes(args.quick)
    names = [n for n, (_c, mod) in st.CONSUMERS.items() if mod is None or st._installed(mod)]
    print(f"Python {platform.python_version()}, rxchat {rxchat.__version__} from "
          f"{Path(rxchat.__file__).parent}; consumers: {', '.join(names)}", file=out)
    results = run_streams(size, names, io.StringIO() if args.quick else out)
    results.update(run_children(size))
    results["session"] = run_session(size)
    results["tls_reuse"] = tls_reuse.run(size["tls_rounds"])
    results["config"] = {"chunks": size["chunks"], "rounds": size["rounds"],
                         "python": platform.python_version(), "consumers": names,
                         "fast_json": _fast_json()}
    print_table(results, out)
    Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    before = json.loads(Path(args.before).read_text("utf-8")) if args.before else None
    plot(results, args.plot, before)
    print(f"\nwrote {args.json} and {args.plot}", file=out)
    return 0


def _fast_json() -> bool:
    try:
        from rxchat._json import FAST
    except ImportError:  # an rxchat from before the optimisations
        return False
    return FAST


if __name__ == "__main__":
    sys.exit(main())
