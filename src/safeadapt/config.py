"""Typed configs: dataclasses built from plain dicts and checked where they enter.

Settings can declare what they may be as data (``setting(default, doc, rule)``): the rule is
enforced in one place (``check_settings``, called by the config's ``__post_init__``) and shown,
with the doc, by ``safeadapt list <name>`` (``settings_info.describe_settings``) -- the two cannot disagree.

``build_config(LPConfig, {"c_grid": [0.1, 1]}, where="protocol 'lp'")`` rejects unknown keys with a
"did you mean", converts lists to tuples, and runs the dataclass's own ``__post_init__`` checks.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from safeadapt._registry import did_you_mean
from safeadapt.errors import InvalidConfig
from safeadapt.rules import (  # noqa: F401 -- re-exported: configs declare their rules from here
    Rule,
    check_option_rules,
    check_options,
    count,
    each,
    flag,
    interval,
    non_negative_number,
    one_of,
    option_rules,
    positive_number,
    template,
)

C = TypeVar("C")

# The largest sample a setting may ask to draw (attack, corruption, reference-task samples).
MAX_SAMPLE = 10_000_000


def build_config(cls: type[C], values: Mapping[str, Any] | C | None, where: str) -> C:
    """An instance of the dataclass ``cls`` from ``values`` (a mapping, an instance, or None)."""
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise InvalidConfig(
            f"{where}: expected a mapping of settings, got {type(values).__name__}."
        )
    nest = getattr(cls, "nest", None)
    if nest is not None:  # earlier releases' flat spellings, moved to their nested place
        values = nest(values, where)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in values:
        if key not in fields:
            hint = did_you_mean(key, fields)
            raise InvalidConfig(
                f"{where}: unknown setting {key!r}.{hint} Known: {', '.join(sorted(fields))}."
            )
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    clean = _typed(cls, clean, where)
    try:
        return cls(**clean)
    except TypeError as err:
        raise InvalidConfig(f"{where}: {err}") from err


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _typed(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check each value against its field's annotation (one place, constraints as data):
    booleans are not numbers, strings are not booleans or numbers. A string that is a plain
    number (YAML 1.1 reads ``1e-5`` as a string) is accepted as that number."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation we cannot resolve: the dataclass checks remain
        return values
    out = dict(values)
    for key, value in values.items():
        if key in hints:
            out[key] = _coerce(hints[key], value, f"{where} {key!r}")
    return out


MAX_INT = 2**53  # any integer setting: beyond it a float cannot hold it and int64 soon overflows
MAX_SEED = 2**32 - 1  # seeds: what every generator safeadapt seeds (NumPy, torch, Python) takes


def check_seed(value: Any, what: str) -> None:
    """A seed: an integer from 0 to ``MAX_SEED``."""
    require(
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED,
        f"{what} must be an integer from 0 to {MAX_SEED:,}; got {value!r}.",
    )


def _coerce(hint: Any, value: Any, what: str) -> Any:
    origin = typing.get_origin(hint)
    options = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options or hint is Any:
            return value
        raise InvalidConfig(f"{what} may not be null; give {_describe(options)}.")
    simple = [o for o in options if o in (bool, int, float, str)]
    tuples = [o for o in options if typing.get_origin(o) is tuple]
    if not simple and not tuples:
        return value  # mappings, nested configs, Any: checked by their own builders
    if isinstance(value, bool):
        if bool in simple:
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value) and (float in simple):
            raise InvalidConfig(f"{what} must be a finite number; got {value!r}.")
        if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
            raise InvalidConfig(f"{what} must lie within +-{MAX_INT:,}; got {value!r}.")
        if float in simple or (int in simple and isinstance(value, int)):
            return value
    elif isinstance(value, str):
        if str in simple:
            return value
        if float in simple and _NUMBER.match(value.strip()):
            number = float(value)
            if not math.isfinite(number):
                raise InvalidConfig(f"{what} must be a finite number; got {value!r}.")
            return number
    elif isinstance(value, tuple) and tuples:
        (inner, *_) = typing.get_args(tuples[0]) or (Any,)
        return tuple(_coerce(inner, v, f"{what} entry") for v in value)
    raise InvalidConfig(f"{what} must be {_describe(options)}; got {value!r}.")


def _describe(options: tuple) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    words = [names[o] for o in options if o in names]
    words += ["a list" for o in options if typing.get_origin(o) is tuple]
    if type(None) in options:
        words.append("null")
    return " or ".join(dict.fromkeys(words)) or "a valid value"


def require(ok: bool, message: str) -> None:
    """Raise :class:`InvalidConfig` with ``message`` unless ``ok`` (never ``assert`` on input)."""
    if not ok:
        raise InvalidConfig(message)


def at_most(config: Any, limits: Mapping[str, float], owner: str) -> None:
    """Upper bounds on sizes, checked before anything of that size is allocated: each named
    attribute of ``config`` (when set) must be <= its limit."""
    for name, limit in limits.items():
        value = getattr(config, name)
        require(
            value is None
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or value <= limit,
            f"{owner} '{name}' is {value!r}, above the limit of {limit:g}; {name} must be "
            f"<= {limit:g}.",
        )


# --- nested settings: a sub-config of fixed type, or one of several (a method and its settings) ---


def nested_setting(cls: type, doc: str = "", default: Any = None) -> Any:
    """A field holding the sub-config ``cls`` (``default``: ``cls()``), written as a mapping of
    its settings; a partial mapping changes only what it names, from the field's default (so a
    subclass's own default sub-config stays)."""
    factory = cls if default is None else (lambda: default)
    return dataclasses.field(default_factory=factory, metadata={"doc": doc, "nested": cls})


def choice_setting(
    default: Any, doc: str, choices: Callable[[], Mapping[str, type]], optional: bool = False
) -> Any:
    """A field holding one of several sub-configs (``choices()``: ``{name: config class}``, each
    with a ``name``), written as its name or as ``{name: {setting: value}}``; ``optional``: null
    means none of them. The chosen method's settings start from the field's default when that
    is the same method."""
    meta = {"doc": doc, "choices": choices, "optional": optional}
    if default is None:
        return dataclasses.field(default=None, metadata=meta)
    return dataclasses.field(default_factory=lambda: default, metadata=meta)


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _resolve_nested(config: Any, owner: str) -> None:
    """Turn the mappings / names given for nested fields into their sub-configs (in place: the
    config's ``__post_init__`` calls this through ``check_settings``)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        sub, choices = f.metadata.get("nested"), f.metadata.get("choices")
        if sub is not None and not isinstance(value, sub):
            built = _sub_config(sub, field_default(f), value, f"{owner} '{f.name}'")
            object.__setattr__(config, f.name, built)
        elif choices is not None and value is None and not f.metadata.get("optional"):
            raise InvalidConfig(
                f"{owner} '{f.name}' may not be null; give one of {', '.join(choices())}."
            )
        elif choices is not None and value is not None and not dataclasses.is_dataclass(value):
            built = _chosen(choices(), field_default(f), value, f"{owner} '{f.name}'")
            object.__setattr__(config, f.name, built)


def _sub_config(cls: type, default: Any, value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        raise InvalidConfig(f"{where} must be a mapping of its settings; got {value!r}.")
    start = dataclasses.asdict(default) if isinstance(default, cls) else {}
    return build_config(cls, {**start, **value}, where)


def choice_parts(value: Any, choices: Mapping[str, type], where: str) -> tuple[str, dict]:
    """``(name, settings)`` of a choice written as a name, as ``{name: {settings}}`` or as a
    settings object; the one reader of that form."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.name, dataclasses.asdict(value)  # type: ignore[attr-defined]
    if isinstance(value, str):
        name, settings = value, {}
    elif isinstance(value, Mapping) and len(value) == 1:
        ((name, settings),) = value.items()
        settings = {} if settings is None else settings
    else:
        raise InvalidConfig(
            f"{where} must be one of {', '.join(choices)}, as a name or as "
            f"{{<name>: {{<setting>: <value>}}}}; got {value!r}."
        )
    if name not in choices:
        raise InvalidConfig(
            f"{where} must be one of {', '.join(choices)}; got {name!r}."
            + did_you_mean(str(name), choices)
        )
    if not isinstance(settings, Mapping):
        raise InvalidConfig(
            f"{where} {name!r} must be a mapping of its settings; got {settings!r}."
        )
    return name, dict(settings)


def _chosen(choices: Mapping[str, type], default: Any, value: Any, where: str) -> Any:
    """The sub-config named by ``value`` (a name or ``{name: {settings}}``)."""
    name, settings = choice_parts(value, choices, where)
    cls = choices[name]
    start = dataclasses.asdict(default) if isinstance(default, cls) else {}
    return build_config(cls, {**start, **settings}, f"{where} {name!r}")


def plain_settings(config: Any) -> dict[str, Any]:
    """``config`` as the mapping a study writes (nested fields as mappings, a chosen method as
    ``{name: {settings}}``): ``build_config`` of it gives ``config`` back."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("choices") is not None and value is not None:
            out[f.name] = {value.name: dataclasses.asdict(value)}
        elif dataclasses.is_dataclass(value):
            out[f.name] = dataclasses.asdict(value)
        else:
            out[f.name] = value
    return out


def record_form(config: Any) -> dict[str, Any]:
    """``config``'s settings as run keys and records store them (a config may keep an earlier
    release's flat form there: ``flat()``)."""
    flat = getattr(config, "flat", None)
    return flat() if callable(flat) else dataclasses.asdict(config)


def with_overrides(config: C, overrides: Mapping[str, Any], where: str) -> C:
    """``config`` with ``overrides`` (flat spellings included) applied."""
    values = dict(overrides)
    nest = getattr(type(config), "nest", None)
    if nest is not None:
        values = nest(values, where, config)
    return build_config(type(config), {**plain_settings(config), **values}, where)


# --- settings declared as data: one rule per field (``safeadapt.rules``), checked here ---


def setting(default: Any = dataclasses.MISSING, doc: str = "", rule: Rule | None = None, *,
            factory: Callable[[], Any] | None = None, late: bool = False) -> Any:  # fmt: skip
    """A config field with its one line of meaning and its rule (``check_settings`` enforces
    the rule; ``describe_settings`` shows both). ``late``: added after runs were first keyed, so
    :func:`key_form` leaves it out while it is at its default (earlier studies keep their keys)."""
    meta = {"doc": doc, "rule": rule, "late": late}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def key_form(config: Any) -> Any:
    """``dataclasses.asdict(config)`` as run keys hash it: nested configs (and mappings of them)
    alike, without the ``late`` settings that are at their default."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out = {}
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if f.metadata.get("late") and value == _default(f):
                continue
            out[f.name] = key_form(value)
        return out
    if isinstance(config, dict):
        return {k: key_form(v) for k, v in config.items()}
    if isinstance(config, list | tuple):
        return type(config)(key_form(v) for v in config)
    return copy.deepcopy(config)


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def check_settings(config: Any, owner: str, path: str = "") -> None:
    """Every declared rule of ``config``'s fields (``None`` passes where the field allows it):
    the size bounds first, before anything is allocated. Nested fields given as mappings or
    names become their sub-configs first (checked by their own rules). ``path``: where a
    sub-config sits (``tune.lora``), so its errors name ``'tune.lora.r'``."""
    _resolve_nested(config, owner)
    declared = _declared(type(config))
    prefix = f"{path}." if path else ""
    for f in dataclasses.fields(config):
        rule = declared.get(f.name, (None, ""))[0]
        value = getattr(config, f.name)
        if rule is None or (value is None and _allows_none(type(config), f.name)):
            continue
        problem = rule.problem(value)
        if problem is not None:
            raise InvalidConfig(f"{owner} '{prefix}{f.name}' {problem}")


def _declared(cls: type) -> dict[str, tuple[Rule | None, str]]:
    """``{field: (rule, doc)}`` as declared with ``setting``, the most derived declaration
    first: a subclass that only changes a default keeps its base's rule and doc."""
    out: dict[str, tuple[Rule | None, str]] = {}
    for klass in cls.__mro__:
        if not dataclasses.is_dataclass(klass):
            continue
        for f in dataclasses.fields(klass):
            rule, doc = f.metadata.get("rule"), f.metadata.get("doc", "")
            old_rule, old_doc = out.get(f.name, (None, ""))
            out[f.name] = (old_rule or rule, old_doc or doc)
    return out


def _allows_none(cls: type, name: str) -> bool:
    try:
        hint = typing.get_type_hints(cls)[name]
    except Exception:
        return True
    return type(None) in typing.get_args(hint) or hint is Any
