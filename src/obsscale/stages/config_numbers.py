"""Numbers written in scientific notation in a config file, read as numbers.

Snakemake reads config files with a YAML 1.1 loader, which takes `1.9e7` or `3e-4` for strings:
its float syntax needs a dot and a signed exponent (`1.9e+7`).  YAML 1.2, and any reader of the
config, takes them for numbers.  `coerce_numbers` walks a config beside its JSON schema and turns
such strings into numbers wherever the schema asks for a number (or an integer, when the value is
whole), before the config is validated; a string field keeps its text whatever it looks like.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from obsscale.core.yamlfile import read_yaml


__all__ = ["coerce_numbers", "parse_number"]

# A decimal number with an exponent, in any of the forms YAML 1.2 reads as a float.
_SCIENTIFIC = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+$")


def parse_number(text: str, integer: bool = False) -> int | float | None:
    """The number `text` spells in scientific notation (`1.9e7`, `-3E-4`), or None.  With
    `integer`, only a whole number is returned (as int)."""
    if not _SCIENTIFIC.match(text.strip()):
        return None
    value = float(text)
    if integer:
        return int(value) if value.is_integer() else None
    return value


def _types(schema: dict) -> set[str]:
    kind = schema.get("type", ())
    return {kind} if isinstance(kind, str) else set(kind)


def _resolve(schema: Any, root: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return {}
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema if isinstance(schema, dict) else {}


def _coerce(value: Any, schema: Any, root: dict) -> Any:
    schema = _resolve(schema, root)
    if not schema:
        return value
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, ()):
            value = _coerce(value, sub, root)
    if isinstance(value, str):
        types = _types(schema)
        if "number" in types:
            number = parse_number(value)
        elif "integer" in types:
            number = parse_number(value, integer=True)
        else:
            number = None
        return value if number is None else number
    if isinstance(value, dict):
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties")
        for key in list(value):
            if key in props:
                value[key] = _coerce(value[key], props[key], root)
                continue
            matched = [s for p, s in patterns.items() if re.search(p, str(key))]
            for sub in matched:
                value[key] = _coerce(value[key], sub, root)
            if not matched and isinstance(extra, dict):
                value[key] = _coerce(value[key], extra, root)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                value[i] = _coerce(item, items, root)
    return value


def coerce_numbers(config: dict, schema: dict | str | Path) -> dict:
    """Turn scientific-notation strings of `config` into numbers where `schema` (a JSON schema,
    or the path of its YAML file) expects a number; changes `config` in place and returns it."""
    if not isinstance(schema, dict):
        schema = read_yaml(schema)
    return _coerce(config, schema, schema)
