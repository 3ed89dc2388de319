"""Every ```python block in README.md and docs/*.md runs, so the docs cannot rot.

The blocks of one page run in order in one namespace, with no API key and
``RXCHAT_BASE_URL`` pointing at a loopback :class:`FakeServer` that plays the offline
model: no network is used.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxchat.testing import FakeServer

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    """The python code blocks of a markdown page."""
    return BLOCK.findall(page.read_text(encoding="utf-8"))


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    for name in ("RXCHAT_API_KEY", "SILICONFLOW_API_KEY", "RXCHAT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with FakeServer() as server:
        monkeypatch.setenv("RXCHAT_BASE_URL", server.base_url)
        yield server


def test_every_page_has_been_found() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "index.md", "quickstart.md", "operators.md"} <= names


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_page_examples_run(page: Path, offline_env: FakeServer) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    out = io.StringIO()
    for number, block in enumerate(python_blocks(page), 1):
        code = compile(block, f"{page.name}[block {number}]", "exec")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
    text = page.read_text(encoding="utf-8")
    if "create_stream_completion(" in text and "FakeServer(" not in text:
        assert offline_env.wait_for_requests(1), "the page's examples sent no request"
