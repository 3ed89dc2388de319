"""Every public name is documented; every operator's docstring carries a marble diagram."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import rxchat
import rxchat.aio
import rxchat.errors
import rxchat.operators
import rxchat.stores
import rxchat.testing

MODULES = [rxchat, rxchat.aio, rxchat.errors, rxchat.operators, rxchat.stores, rxchat.testing]
PUBLIC = [
    (module, name)
    for module in MODULES
    for name in module.__all__
    if not name.startswith("__")
]


@pytest.mark.parametrize(
    ("module", "name"), PUBLIC, ids=[f"{m.__name__}.{n}" for m, n in PUBLIC]
)
def test_public_name_has_a_docstring(module: ModuleType, name: str) -> None:
    obj = getattr(module, name)
    doc = inspect.getdoc(obj)
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        pytest.skip(f"{name} is a value; documented in its module")
    assert doc and len(doc) > 20, f"{module.__name__}.{name} has no real docstring"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_module_has_a_docstring(module: ModuleType) -> None:
    assert (module.__doc__ or "").strip()


OPERATORS = ["accumulate", "final_message", "content", "reasoning", "idle_timeout"]


@pytest.mark.parametrize("name", OPERATORS)
def test_operator_docstring_has_a_marble_diagram(name: str) -> None:
    doc = inspect.getdoc(getattr(rxchat.operators, name)) or ""
    assert "```text\n" in doc, "the diagram belongs in a fenced text block"
    assert doc.count("──") >= 2 or doc.count("--") >= 2, "no marble diagram"
    assert "Returns:" in doc


def test_public_classes_document_their_methods() -> None:
    for cls in (rxchat.ChatClient, rxchat.ChatSession, rxchat.stores.SQLiteStore,
                rxchat.stores.PostgresStore, rxchat.aio.ObservableIterator):
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or not callable(member):
                continue
            if name not in vars(cls):
                continue  # inherited from reactivex: documented there
            assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"
