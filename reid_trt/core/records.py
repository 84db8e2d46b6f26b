"""Typed results become JSON only at the file: the one conversion every report uses."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path


def jsonable(value):
    """`value` as JSON-ready data: a dataclass by its own `to_dict` where it has one, else field
    by field; lists, tuples and dicts element by element; paths as strings."""
    if is_dataclass(value):
        return value.to_dict() if hasattr(value, "to_dict") else fields_jsonable(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def fields_jsonable(record) -> dict:
    """A dataclass's fields, each `jsonable` (for a `to_dict` that adds to them)."""
    return {f.name: jsonable(getattr(record, f.name)) for f in fields(record)}
