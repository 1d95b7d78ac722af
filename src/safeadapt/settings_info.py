"""Every setting of a config dataclass as ``safeadapt list`` and ``init --full`` show it: name,
type, default, the rule ``check_settings`` enforces (``safeadapt.config``) and one line of
meaning -- read from the same declarations that validation uses, so the two cannot disagree."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from safeadapt.config import _declared, field_default


@dataclass(frozen=True)
class SettingInfo:
    """One setting as ``safeadapt list`` shows it: name, type, default, allowed values, meaning."""

    name: str
    type: str
    default: Any
    allowed: str
    doc: str

    def to_json(self) -> dict[str, Any]:
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        if dataclasses.is_dataclass(default):
            default = dataclasses.asdict(default)
        return {**dataclasses.asdict(self), "default": default}


def describe_settings(cls: type, prefix: str = "", given: Any = None) -> list[SettingInfo]:
    """Every field of the config dataclass ``cls``: its type, default, rule (the one
    ``check_settings`` enforces) and meaning -- the field's declared doc, else its entry in the
    class docstring (``name``: ...), else its source comment. A nested sub-config's settings
    follow as ``field.setting``; a choice of methods as ``field`` (the method's name) and each
    method's settings as ``field.method.setting``. ``given``: the instance whose values are the
    defaults (a sub-config a subclass set)."""
    hints = typing.get_type_hints(cls)
    comments = _field_comments(cls)
    declared = _declared(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = getattr(given, f.name) if given is not None else field_default(f)
        rule, doc = declared.get(f.name, (None, ""))
        doc = doc or docstring_entry(cls, f.name) or comments.get(f.name, "")
        name = prefix + f.name
        nested, choices = f.metadata.get("nested"), f.metadata.get("choices")
        if nested is not None:
            out += describe_settings(nested, f"{name}.", default)
            continue
        if choices is not None:
            options = choices()
            optional = f.metadata.get("optional")
            allowed = "one of " + ", ".join(options) + (" or null" if optional else "")
            allowed += "; a name, or {<name>: {<setting>: <value>}}"
            chosen = None if default is None else default.name
            out.append(SettingInfo(name, "name or mapping", chosen, allowed, doc))
            for option, sub in options.items():
                mine = default if isinstance(default, sub) else None
                out += describe_settings(sub, f"{name}.{option}.", mine)
            continue
        out.append(
            SettingInfo(name, type_name(hints.get(f.name, Any)), default,
                        rule.allowed if rule else "", doc)
        )  # fmt: skip
    return out


def type_name(hint: Any) -> str:
    if hint is Any:
        return "any"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(hint))
    if origin is tuple:
        (inner, *_) = typing.get_args(hint) or (Any,)
        return f"list of {type_name(inner)}"
    if origin in (dict, Mapping):
        return "mapping"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def docstring_entry(obj: Any, name: str) -> str:
    """``name``'s entry in the docstring of ``obj`` (or of its bases): the text after
    ````name``: `` up to the next ``;`` or the next entry."""
    for klass in getattr(obj, "__mro__", (obj,)):
        doc = " ".join((klass.__doc__ or "").split())
        pattern = rf"``{re.escape(name)}``(?: / ``\w+``)*: (.+?)(?:;|(?= ``\w+``)|$)"
        match = re.search(pattern, doc)
        if match:
            return match.group(1).strip().rstrip(".")
    return ""


def _field_comments(cls: type) -> dict[str, str]:
    """The source comments of each field of ``cls`` (and its bases): a trailing ``# ...`` on
    the field's line, else the comment block right above it."""
    import inspect

    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines:
            text = line.strip()
            if text.startswith("#"):
                above.append(text.lstrip("# ").strip())
                continue
            field_match = re.match(r"(\w+)\s*:\s*[^=]+(?:=.*)?$", text)
            if field_match and not text.startswith(("def ", "class ", "return", "@")):
                trailing = text.split("  # ", 1)[1].strip() if "  # " in text else ""
                out[field_match.group(1)] = trailing or " ".join(above)
            above = []
    return out
