"""Option groups: a library config's fields offered as command-line options, declared once.

The config dataclass owns each option: its name, type, default, bounds (checked when the config
is built) and help text (the field's metadata, `core.options.described`); cli/common.py's one
table says which flag spells each field. A Group only says which fields the command line
offers. A command takes whole groups (`@takes(BUILD, CALIBRATION)`) and receives the configs
built from them, so an option is added with one field (and a flag entry where the flag is not
the field's name), and two commands taking the same group cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from reid_trt.cli.common import flag_namer
from reid_trt.core.errors import render


@dataclass(frozen=True)
class Group:
    """`fields`: the offered fields, in the order --help lists them; a nested config's field is
    dotted (budget.max_map_drop). A value left at None on the command line means the config's
    own default. `text`: choices taken as plain text, so that the config refuses a wrong one
    with its own message (the choices, and what each is for) rather than Click's."""

    name: str  # the keyword the command receives the built config by
    config: type
    fields: tuple[str, ...]
    text: tuple[str, ...] = ()

    def options(self) -> list[tuple[str, dataclasses.Field, Any]]:
        """(parameter name, field, type) for each offered field."""
        found = []
        for path in self.fields:
            owner, field, hint = self.config, None, None
            for part in path.split("."):
                field = {f.name: f for f in dataclasses.fields(owner)}[part]
                hint = owner = typing.get_type_hints(owner)[part]
            found.append((path.rsplit(".", 1)[-1], field, hint))
        return found

    def parameters(self, flag_of) -> list[inspect.Parameter]:
        params = []
        for name, field, hint in self.options():
            default, kind, flag = _default_of(field), hint, flag_of(name)
            if hint is bool:
                flag = f"{flag}/--no-{flag.removeprefix('--')}"
            if name in self.text:
                kind = str | None
            if typing.get_origin(hint) is tuple:  # a repeatable option
                kind, default = list[typing.get_args(hint)[0]] | None, None
            elif default is None and type(None) not in typing.get_args(hint):
                kind = hint | None
            help_text = render(field.metadata.get("help", ""), flag_of)
            option = typer.Option(flag, help=help_text,
                                  show_default=default is not None)
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=Annotated[kind, option]))
        return params

    def build(self, values: dict[str, Any]):
        """The config from the command line's values (None: the config's default)."""
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for path in self.fields:
            name = path.rsplit(".", 1)[-1]
            value = values[name]
            if isinstance(value, list):
                value = tuple(value)
            if value is None:
                continue
            if "." in path:
                nested.setdefault(path.split(".", 1)[0], {})[name] = value
            else:
                top[name] = value
        for part, fields in nested.items():
            field = {f.name: f for f in dataclasses.fields(self.config)}[part]
            top[part] = dataclasses.replace(_default_of(field), **fields)
        return self.config(**top)


def _default_of(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


COMMON_FLAGS = flag_namer()


def takes(*groups: Group, flag_of=COMMON_FLAGS):
    """Adds each group's options to a command and hands it the built configs, by group name. An
    option two groups share (a field of the same name) is one flag that feeds both. `flag_of`:
    the command's field -> flag namer, where it overrides the common table."""

    def decorate(fn):
        signature = inspect.signature(fn, eval_str=True)  # the Annotated options, resolved
        own = [p for p in signature.parameters.values() if p.name not in {g.name for g in groups}]
        added: dict[str, inspect.Parameter] = {}
        for group in groups:
            for param in group.parameters(flag_of):
                added.setdefault(param.name, param)

        @functools.wraps(fn)
        def wrapper(**kwargs):
            values = {name: kwargs.pop(name) for name in added}
            for group in groups:
                kwargs[group.name] = group.build(values)
            return fn(**kwargs)

        params = own + list(added.values())
        wrapper.__signature__ = signature.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


