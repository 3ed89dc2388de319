"""One docstring style (Google, markdown text), as mkdocstrings is configured.

A reST role (``:class:`X` ``) or a ``::`` literal block renders raw on the docs site;
the source is checked, and so is the built site's HTML.
"""

from __future__ import annotations

import ast
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


def test_the_built_site_shows_no_raw_rest_markup(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "", "HOME": str(tmp_path)},
    )
    assert built.returncode == 0, built.stderr
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    assert "create_stream_completion" in reference and "ChatClient" in reference
    raw = []
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        raw += [f"{page.relative_to(site)}: {m[0]}" for m in HTML_ROLE.finditer(html)]
        raw += [f"{page.relative_to(site)}: {m[0]!r}" for m in HTML_LITERAL.finditer(html)]
    assert raw == []
