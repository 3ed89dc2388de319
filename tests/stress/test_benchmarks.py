"""Smoke test of ``benchmarks/stream_throughput.py`` so the benchmark cannot rot.

It runs the real script in ``--quick`` mode with tiny sizes against its own loopback
server, and checks the shape of the results and that every consumer read the whole
stream. Nothing here asserts a timing.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "stream_throughput.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """The benchmark script, imported from its file (``benchmarks`` is not a package)."""
    spec = importlib.util.spec_from_file_location("stream_throughput", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_quick_run_measures_every_installed_consumer(bench: ModuleType, tmp_path: Path) -> None:
    out = io.StringIO()
    path = tmp_path / "results.json"
    argv = ["--quick", "--chunks", "40", "--latency-events", "5", "--gap-ms", "1"]
    code = bench.main([*argv, "--profile", "--json", str(path)], out=out)

    assert code == 0
    results = json.loads(path.read_text())
    expected = {
        name
        for name, (_consumer, module) in bench.CONSUMERS.items()
        if module is None or _installed(module)
    }
    for framing in ("chunked", "close"):
        rows = results["throughput"][framing]
        assert set(rows) == expected
        assert all(row["median"] > 0 for row in rows.values())
        assert results["latency"][framing]["events"] == 5
    assert results["config"]["chunks"] == 40
    assert results["profile_us_per_delta"]
    assert results["stages_us_per_delta"]
    report = out.getvalue()
    assert "deltas/s" in report and "p99" in report and "cProfile" in report


@pytest.mark.parametrize("framing", ["chunked", "close"])
@pytest.mark.parametrize(
    "name", ["raw", "socket", "urllib3", "rxchat", "iter_lines", "sseclient", "openai"]
)
def test_consumer_reads_the_whole_stream(bench: ModuleType, name: str, framing: str) -> None:
    consumer, module = bench.CONSUMERS[name]
    if module is not None:
        pytest.importorskip(module)
    events, content = bench.build_events(30)
    with bench.BenchServer(events, latency_events=1, gap=0.0) as server:
        got = consumer(server.base_url(framing))
    assert (got.deltas, got.content) == (30, content)


def test_build_events_shape(bench: ModuleType) -> None:
    events, content = bench.build_events(5)
    assert len(events) == 6 and events[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert content == "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    with pytest.raises(ValueError):
        bench.build_events(2)


RUN_ALL = SCRIPT.parent / "run_all.py"


def test_run_all_quick_measures_every_item(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = sys.path[:]
    try:
        spec.loader.exec_module(module)
        out = io.StringIO()
        results_path, plot_path = tmp_path / "all.json", tmp_path / "all.png"
        code = module.main(
            ["--quick", "--json", str(results_path), "--plot", str(plot_path),
             "--before", str(SCRIPT.parent / "results.json")], out=out
        )
    finally:
        sys.path[:] = saved
        for name in ("run_all", "scenarios", "session_overhead", "stream_throughput", "scale",
                     "footprint", "tls_turns", "report"):
            sys.modules.pop(name, None)
    assert code == 0
    results = json.loads(results_path.read_text())
    assert set(results["throughput"]) == {"chunked", "close", "64k-chunked", "64k-close"}
    assert set(results["latency"]) == {"chunked", "close"}
    for framing in ("chunked", "close"):
        assert results["cancel"][framing]["thread_ms_max"] >= 0
    concurrency = results["concurrency"]
    assert concurrency["completed"] == concurrency["streams"] and concurrency["errors"] == 0
    for key in ("scale", "scale_together"):
        scale = results[key]
        assert scale["completed"] == scale["streams"] and scale["errors"] == 0
        assert scale["peak_threads"] > 1 and scale["latency_ms"]["p99"] > 0
    assert results["scale_together"]["peak_threads"] <= 64  # threads do not grow with streams
    assert len(results["session"]["us_per_delta"]) == 2
    memory = results["memory"]
    assert set(memory) == {"content", "final_message", "idle", "session"}
    assert all(row["peak_rss_mb"] > 0 for row in memory.values())
    assert memory["idle"]["waiting"] == memory["idle"]["streams"]
    assert memory["session"]["messages"] == 1 + 2 * memory["session"]["turns"]
    if _installed("orjson"):
        assert set(results["without_orjson"]["throughput"]) == set(results["throughput"])
        assert results["without_orjson"]["config"]["json"] == "json (stdlib)"
    if _installed("trustme"):
        assert set(results["tls_turns"]) == {"keep-alive", "close"}
        assert results["tls_turns"]["close"]["connections_per_turn"] == 1
    else:
        assert "trustme is not installed" in results["tls_turns"]
    report = out.getvalue()
    for heading in ("deltas/s", "p99", "dispose", "2,000", "session", "TLS", "idle"):
        assert heading in report
    if _installed("matplotlib"):
        assert plot_path.read_bytes()[:4] == b"\x89PNG"
    else:
        assert not plot_path.exists()
        assert "plot skipped: matplotlib is not installed" in report


def test_the_store_cost_benchmark_runs(postgres_dsn: str, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "store_cost", SCRIPT.parent / "store_cost.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "stores.json"
    assert module.main(["--turns", "8", "--messages", "20", "--repeat", "2",
                        "--sessions", "4", "--session-turns", "2",
                        "--postgres-dsn", postgres_dsn, "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results) == {"sqlite", "postgres", "shared"}
    assert all(v > 0 for figures in results.values() for v in figures.values())
