"""The examples in README.md and docs/*.md run the way a reader runs them.

Every ```python block of the README and of docs/*.md is saved as its own script and run
alone in a fresh process, exactly as pasted: a reader copies one block, not a page, so a
block that uses a name it does not import fails here. They talk to a real ``rxchat
serve`` subprocess on 127.0.0.1 through ``RXCHAT_BASE_URL``, with no API key in the
environment, so no network is used, and each has its own empty data directory
(``RXCHAT_DATA_DIR``), so nothing is written to the reader's conversations.

Every block that runs must print something while it runs (a script that returns while
its reply is still streaming on a background thread prints nothing and fails here), and
what a page declares with ``<!-- prints: TEXT -->`` right after a block must appear in
that block's output. A block that cannot run on its own is marked with
``<!-- fragment: why -->`` on the line before its fence, and is counted, not run.
The scripts run in parallel; the summary line says how many ran.
A block that needs a package rxchat does not install says so in a comment
(``# needs: pip install NAME``) and runs only where that package is installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import rxchat_serve

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(
    r"(?:^<!--\s*(?P<mark>fragment)\b[^>]*-->\n)?"
    r"^```python\n(?P<code>.*?)^```\n"
    r"(?P<prints>(?:<!--\s*prints:.*?-->\n)*)",
    re.S | re.M,
)
PRINTS = re.compile(r"<!--\s*prints:\s*(.*?)\s*-->", re.S)
SEPARATOR = "\x1e rxchat docs block {} \x1e"
LEAKY_PREFIXES = ("RXCHAT_", "SILICONFLOW_", "OPENAI_")
"""Keys, base URLs and models from the developer's environment never reach an example."""
SCRIPT_TIMEOUT_S = 60.0

REPORT: list[str] = []
"""Filled when the scripts ran; tests/conftest.py prints it in pytest's summary."""


@dataclass(frozen=True)
class Block:
    """One ```python block of a page."""

    page: Path
    number: int
    line: int
    code: str
    fragment: bool
    prints: tuple[str, ...]


@dataclass(frozen=True)
class Script:
    """What one process runs: one block, alone, as a reader pastes it."""

    name: str
    blocks: tuple[Block, ...]

    def source(self) -> str:
        parts = []
        for block in self.blocks:
            where = f"{block.page.name}, block {block.number}, line {block.line}"
            parts.append(f"# --- {where}\nprint({SEPARATOR.format(block.number)!r}, flush=True)")
            parts.append(block.code)
        return "\n".join(parts)


def python_blocks(page: Path, text: str | None = None) -> list[Block]:
    """The ```python blocks of a markdown page, with their markers."""
    text = page.read_text(encoding="utf-8") if text is None else text
    return [
        Block(page, number, text.count("\n", 0, match.start("code")) + 1, match["code"],
              fragment=match["mark"] is not None,
              prints=tuple(PRINTS.findall(match["prints"])))
        for number, match in enumerate(BLOCK.finditer(text), 1)
    ]


def scripts() -> list[Script]:
    """Every block that is not a fragment, one script each."""
    found: list[Script] = []
    for page in PAGES:
        where = page.name if page.name == "README.md" else f"docs/{page.name}"
        found += [Script(f"{where}[{b.number}]", (b,))
                  for b in python_blocks(page) if not b.fragment]
    return found


NEEDS = re.compile(r"^#\s*needs:\s*pip install\s+(?P<names>.+)$", re.M)


def missing_packages(code: str) -> list[str]:
    """The packages a block's ``# needs: pip install ...`` comment names that are absent."""
    from importlib.util import find_spec

    wanted = [n for m in NEEDS.finditer(code) for n in m["names"].split()]
    return [n for n in wanted if find_spec(n.replace("-", "_").split("[")[0]) is None]


SCRIPTS = scripts()


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    path: Path


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """A real ``rxchat serve`` on a free loopback port; its base URL."""
    with rxchat_serve(_clean_env()) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def outcomes(served: str) -> Iterator[dict[str, Future[Outcome]]]:
    """Every script, started at once on a few workers; each test waits for its own."""
    env = {**_clean_env(), "RXCHAT_BASE_URL": served}
    assert not any(k.startswith("RXCHAT_") and k != "RXCHAT_BASE_URL" for k in env)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=4) as pool:
        futures = {s.name: pool.submit(_run, s, Path(tmp), env) for s in SCRIPTS
                   if not missing_packages(s.blocks[0].code)}
        yield futures
        for future in futures.values():
            future.cancel()
    blocks = sum(len(s.blocks) for s in SCRIPTS)
    fragments = sum(b.fragment for p in PAGES for b in python_blocks(p))
    REPORT.append(f"docs examples: ran {blocks} python blocks, each alone as its own script, "
                  f"against rxchat serve; {fragments} marked as fragments, not run")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(LEAKY_PREFIXES) and not k.endswith("_API_KEY")}


def _run(script: Script, tmp: Path, env: dict[str, str]) -> Outcome:
    workdir = tmp / re.sub(r"\W+", "_", script.name)
    workdir.mkdir()
    path = workdir / "example.py"
    path.write_text(script.source(), encoding="utf-8")
    env = {**env, "RXCHAT_DATA_DIR": str(workdir / "rxchat-data")}
    try:
        done = subprocess.run([sys.executable, str(path)], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        return Outcome(-1, str(exc.stdout or ""), f"timed out after {SCRIPT_TIMEOUT_S} s", path)
    return Outcome(done.returncode, done.stdout, done.stderr, path)


def _per_block(stdout: str) -> dict[int, str]:
    pieces = re.split("\x1e rxchat docs block (\\d+) \x1e\n", stdout)
    return {int(n): text for n, text in zip(pieces[1::2], pieces[2::2], strict=True)}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_example_runs_and_prints(script: Script, outcomes: dict[str, Future[Outcome]]) -> None:
    missing = missing_packages(script.blocks[0].code)
    if missing:
        pytest.skip(f"{script.name} needs {', '.join(missing)}, which is not installed")
    outcome = outcomes[script.name].result()
    assert outcome.returncode == 0, f"{script.name} failed:\n{outcome.stderr}"
    assert outcome.stderr == "", f"{script.name} wrote to stderr:\n{outcome.stderr}"
    printed = _per_block(outcome.stdout)
    for block in script.blocks:
        output = printed.get(block.number, "")
        where = f"{block.page.name} block {block.number} (line {block.line})"
        assert output.strip(), f"{where} printed nothing while it ran"
        for expected in block.prints:
            assert expected in output, f"{where} did not print {expected!r}:\n{output}"


def test_every_page_and_example_has_been_found() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "index.md", "quickstart.md", "operators.md"} <= names
    readme = [s for s in SCRIPTS if s.name.startswith("README")]
    assert len(readme) >= 2
    assert len(SCRIPTS) >= 10


def test_every_block_runs_alone() -> None:
    """One script per block: a page's earlier blocks never define names for a later one."""
    blocks = [b for p in PAGES for b in python_blocks(p) if not b.fragment]
    assert [s.blocks for s in SCRIPTS] == [(b,) for b in blocks]
    assert len(blocks) >= 50


def test_a_needs_comment_names_missing_packages() -> None:
    assert missing_packages("# needs: pip install pytest\nimport pytest\n") == []
    assert missing_packages("# needs: pip install no-such-package-xyz\n") == [
        "no-such-package-xyz"]
    assert missing_packages("print(1)\n") == []


def test_markers_are_parsed() -> None:
    page = Path("page.md")
    text = (
        "```python\nprint(1)\n```\n<!-- prints: 1 -->\n<!-- prints: x -->\n\n"
        "<!-- fragment: needs your UI -->\n```python\nrender(x)\n```\n\n"
        "```python\nprint(2)\n```\n"
    )
    first, second, third = python_blocks(page, text)
    assert (first.code, first.prints, first.fragment) == ("print(1)\n", ("1", "x"), False)
    assert (second.code, second.fragment, second.line) == ("render(x)\n", True, 9)
    assert (third.prints, third.fragment) == ((), False)


def test_readme_links_are_absolute() -> None:
    """The README is also the package index page, where relative links break."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links, "the README links to its docs"
    assert [link for link in links if not link.startswith("https://")] == []


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"^python3 -m venv .*pytest$", readme, re.M)
    assert command, "the README shows how to run the tests"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command[0] in ci


def test_no_key_reaches_the_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RXCHAT_API_KEY", "SILICONFLOW_API_KEY", "OPENAI_API_KEY", "RXCHAT_BASE_URL",
                 "GROQ_API_KEY"):
        monkeypatch.setenv(name, "sk-from-the-developer")
    assert "sk-from-the-developer" not in _clean_env().values()


def test_the_sessions_page_shows_state_and_what_cancel_delivers() -> None:
    """ChatState and session.state are on the sessions page, with a cancelled send()."""
    blocks = python_blocks(ROOT / "docs" / "sessions.md")
    shown = [b for b in blocks if "session.state" in b.code and "ChatState" in b.code]
    assert shown, "docs/sessions.md has no example reading session.state"
    (block,) = [b for b in shown if "session.cancel()" in b.code]
    assert any("'cancelled'), 'completed']" in p for p in block.prints)
