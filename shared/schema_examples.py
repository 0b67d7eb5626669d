"""One walk over the JSON Schema pydantic emits, to a value valid against it.

Two callers want a value for a schema and differ only at the leaves: the offline model
(deterministic placeholder output, ``shared.models.offline``) and the OpenAPI document's
request examples (meaningful values, ``shared.openapi.docs_example``). The walk resolves
``$ref``, takes ``const`` and the first ``enum`` value, the first non-null ``anyOf`` /
``oneOf`` / ``allOf`` option, fills objects and arrays, and asks ``leaf`` for the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (schema, kind, field name) -> a boolean, number or string valid against schema
Leaf = Callable[[dict[str, Any], str, str], Any]


def schema_example(schema: dict[str, Any], leaf: Leaf, root: dict[str, Any] | None = None, name: str = "value", *,
                   preset: Callable[[dict[str, Any]], Any] | None = None, required_only: bool = False,
                   items: Callable[[str, list[Any]], list[Any]] | None = None) -> Any:
    """A value valid against ``schema``. ``preset(schema)`` may answer first (anything but
    ``NotImplemented``); ``required_only`` keeps an object's required members (all when it
    has none); ``items(name, values)`` may rework a list."""
    root = root or schema

    def walk(node: dict[str, Any], name: str) -> Any:
        if "$ref" in node:
            return walk(root.get("$defs", {})[node["$ref"].split("/")[-1]], name)
        found = preset(node) if preset is not None else NotImplemented
        if found is not NotImplemented:
            return found
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return node["enum"][0]
        for key in ("anyOf", "oneOf", "allOf"):
            if key in node:
                options = [s for s in node[key] if s.get("type") != "null"] or node[key]
                return walk(options[0], name)
        kind = node.get("type", "object")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if kind == "object":
            props: dict[str, Any] = node.get("properties", {})
            keep = ([k for k in props if k in node.get("required", [])] if required_only else []) or list(props)
            return {key: walk(props[key], key) for key in keep}
        if kind == "array":
            count = max(1, node.get("minItems", 1))
            count = min(count, node.get("maxItems", count))
            values = [walk(node.get("items", {}), name) for _ in range(count)]
            return items(name, values) if items is not None else values
        return leaf(node, str(kind), name)

    return walk(schema, name)


__all__ = ["Leaf", "schema_example"]
