"""One docstring style (Google, markdown text), as mkdocstrings is configured.

A reST role (``:class:`X` ``) or a ``::`` literal block renders raw on the docs site;
the source is checked, and so is the built site's HTML.
"""

from __future__ import annotations

import ast
import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "rxchat").rglob("*.py"))
ROLE = re.compile(r":(?:py:)?(class|func|data|mod|meth|attr|exc|obj|const|ref):`~?([^`]+)`")
LITERAL = re.compile(r"::[ \t]*$", re.M)
HTML_ROLE = re.compile(r":(class|func|data|mod|meth|attr|exc|obj|const|ref):(?:<code>|`)~?([^<`]+)")
HTML_LITERAL = re.compile(r"\S::(?=\s|<)")

def docstrings(path: Path) -> list[tuple[int, str]]:
    """Every docstring of a module (module, class, function and attribute docstrings)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.lineno, node.value.value) for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]


def rest_markup(path: Path) -> list[str]:
    found = []
    for line, text in docstrings(path):
        found += [f"line {line}+: {m[0]}" for m in ROLE.finditer(text)]
        found += [f"line {line}+: a '::' literal block" for _ in LITERAL.finditer(text)]
    return found


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_docstrings_have_no_rest_markup(path: Path) -> None:
    assert rest_markup(path) == [], (
        "use markdown: `Name` for a role, a ```text fence for a literal block"
    )


def test_the_checks_see_rest_markup(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('"""See :class:`~a.B`. ::\n\n    x\n"""\n\nX = 1\n"""Like :data:`Y`."""\n')
    assert len(rest_markup(bad)) == 3
    html = "<p>See :class:<code>B</code> and :data:`Y`; the picture::</p>"
    assert [m[2] for m in HTML_ROLE.finditer(html)] == ["B", "Y"]
    assert HTML_LITERAL.search(html)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs site, built once (strict) for the tests that read its HTML."""
    tmp_path = tmp_path_factory.mktemp("docs")
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "", "HOME": str(tmp_path)},
    )
    assert built.returncode == 0, built.stderr
    return site


def test_the_built_site_shows_no_raw_rest_markup(site: Path) -> None:
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    assert "create_stream_completion" in reference and "ChatClient" in reference
    raw = []
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        raw += [f"{page.relative_to(site)}: {m[0]}" for m in HTML_ROLE.finditer(html)]
        raw += [f"{page.relative_to(site)}: {m[0]!r}" for m in HTML_LITERAL.finditer(html)]
    assert raw == []


def _signature(reference: str, name: str) -> str:
    """The text of an object's signature block on the reference page."""
    start = reference.index(f'id="{name}"')
    block = re.search(r'class="doc-signature.*?</code>', reference[start:], re.S)
    assert block, f"no signature block for {name}"
    return html.unescape(re.sub(r"<[^>]+>", "", block[0]))


def test_the_reference_shows_default_values_not_private_names(site: Path) -> None:
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    client = _signature(reference, "rxchat.ChatClient")
    assert "timeout: float | tuple[float, float] = (10.0, 120.0)," in client
    assert "first_delta_timeout: float | None = 300.0," in client
    shown = re.sub(r"<[^>]+>", "", reference)
    assert re.findall(r"\bDEFAULT_[A-Z_]+", html.unescape(shown)) == []
    # formatted: one parameter a line once the signature is long (ruff or black did it)
    assert "\n    base_url: str | None = None,\n" in client
