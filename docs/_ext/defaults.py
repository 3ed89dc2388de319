"""A Griffe extension for the API reference: parameter defaults shown as their values.

``ChatClient(timeout=DEFAULT_TIMEOUT)`` tells a reader nothing: the constant lives in a
private module and its value is not on the page. This shows ``timeout=(10.0, 120.0)``
instead, for any default that names a module-level constant of the package.
"""

from __future__ import annotations

from typing import Any

import griffe


class DefaultValues(griffe.Extension):
    """Replace each parameter default that names a constant by the constant's value."""

    def on_function(self, *, func: griffe.Function, loader: griffe.GriffeLoader,
                    **kwargs: Any) -> None:
        for parameter in func.parameters:
            default = parameter.default
            if not isinstance(default, griffe.ExprName):
                continue
            try:
                target = loader.modules_collection[default.canonical_path]
                value = target.value if target.is_attribute else None
            except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            if value is not None:
                parameter.default = value
