"""What a study can name, and every setting of each: protocols, safety families, backbones and
backbone sources, built-in tasks, metrics (``safeadapt list`` and ``safeadapt list <name>``).

The settings come from the same place validation reads: a protocol's or a family's config
dataclass (``safeadapt.config.describe_settings``: type, default, the declared rule that
``check_settings`` enforces, the meaning), a backbone's or a built-in task's loader signature
(the options a study may pass; an unknown one is refused by that same signature).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from safeadapt._registry import did_you_mean
from safeadapt.errors import InvalidConfig
from safeadapt.settings_info import SettingInfo, describe_settings, docstring_entry, type_name


@dataclass(frozen=True)
class Entry:
    """One thing a study can name: its ``kind``, ``name``, one line of ``summary``, how the
    study writes it (``usage``) and its ``settings``."""

    kind: str
    name: str
    summary: str
    usage: str
    settings: tuple[SettingInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "summary": self.summary,
            "usage": self.usage,
            "settings": [s.to_json() for s in self.settings],
        }


def _first_line(obj: Any) -> str:
    """The docstring's first paragraph, without its ``name``: entries (shown per setting)."""
    doc = " ".join((inspect.getdoc(obj) or "").split("\n\n")[0].split())
    return re.sub(r"\s*``\w+``(?: / ``\w+``)*: .*$", "", doc)


def signature_settings(
    *functions: Callable[..., Any], skip: tuple[str, ...] = ()
) -> list[SettingInfo]:
    """The keyword parameters of ``functions`` (the first one's wins on a shared name), with
    their type, default and the functions' docstring entry (``name``: ...)."""
    from safeadapt.config import option_rules

    seen: dict[str, SettingInfo] = {}
    for fn in functions:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        rules = option_rules(fn)  # declared as Annotated[type, rule]: what validation checks
        for p in inspect.signature(fn).parameters.values():
            if p.name in skip or p.name in seen or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            default = None if p.default is p.empty else p.default
            kind = type_name(hints[p.name]) if p.name in hints else "any"
            allowed = rules[p.name].allowed if p.name in rules else ""
            seen[p.name] = SettingInfo(p.name, kind, default, allowed, docstring_entry(fn, p.name))
    return list(seen.values())


def _protocol(name: str) -> Entry:
    from safeadapt.protocols import PROTOCOLS

    cls = PROTOCOLS.get(name)
    usage = f"protocols: {{my-{name}: {{protocol: {name}, <setting>: <value>}}}}"
    return Entry("protocol", name, _first_line(cls), usage, tuple(describe_settings(cls.Config)))


def _family(name: str) -> Entry:
    from safeadapt.safety import FAMILIES

    cls = FAMILIES.get(name)
    usage = f"safety: {{{name}: {{<setting>: <value>}}}} (false: off)"
    return Entry("safety family", name, cls.title, usage, tuple(describe_settings(cls.Config)))


def _backbone(name: str) -> Entry:
    from safeadapt.backbones import BACKBONES

    loader = BACKBONES.get(name)
    usage = f"backbone: {{name: {name}, options: {{<option>: <value>}}}}"
    settings = signature_settings(loader)
    return Entry("backbone", name, _first_line(loader), usage, tuple(settings))


def _source(prefix: str) -> Entry:
    from safeadapt.backbones.sources import SOURCES

    source = SOURCES.get(prefix)
    loaders = source.loaders()
    usage = f"backbone: {{name: '{source.form}', options: {{<option>: <value>}}}}"
    summary = _first_line(inspect.getmodule(source.load)) or source.form
    settings = signature_settings(*loaders, skip=("model_id", "spec"))
    if not loaders:
        summary += " Its options are the named function's own keyword arguments."
    return Entry("backbone source", prefix, summary, usage, tuple(settings))


def _task(name: str) -> Entry:
    from safeadapt.data import TASKS

    loader = TASKS.get(name)
    usage = f"task: {{builtin: {name}, options: {{<option>: <value>}}}}"
    settings = signature_settings(loader, skip=("seed",))
    return Entry("built-in task", name, _first_line(loader), usage, tuple(settings))


def _metric(name: str) -> Entry:
    from safeadapt.metrics import METRICS

    fn = METRICS.get(name)
    usage = f"safety: {{metrics: [{name}, ...]}}"
    return Entry("metric", name, _first_line(fn), usage, ())


def registries() -> dict[str, tuple[list[str], Callable[[str], Entry]]]:
    """``{kind: (names, describe)}`` of everything a study can name."""
    from safeadapt.backbones import BACKBONES
    from safeadapt.backbones.sources import SOURCES
    from safeadapt.data import TASKS
    from safeadapt.metrics import METRICS
    from safeadapt.protocols import PROTOCOLS
    from safeadapt.safety import FAMILIES

    return {
        "protocols": (PROTOCOLS.names(), _protocol),
        "safety families": (FAMILIES.in_order(), _family),
        "backbones": (BACKBONES.names(), _backbone),
        "backbone sources": (SOURCES.in_order(), _source),
        "tasks": (TASKS.names(), _task),
        "metrics": (METRICS.names(), _metric),
    }


def describe(name: str) -> Entry:
    """The entry of ``name`` (a protocol, family, backbone, source prefix, task or metric);
    one line with the near names when there is none."""
    every: list[str] = []
    for names, make in registries().values():
        if name in names:
            return make(name)
        every += names
    hint = did_you_mean(name, every)
    raise InvalidConfig(
        f"nothing named {name!r} to list.{hint} Run `safeadapt list` for every protocol, safety "
        "family, backbone, backbone source, task and metric."
    )


def settings_yaml(entry: Entry, indent: str) -> list[str]:
    """Every setting of ``entry`` as commented-out YAML lines (``safeadapt init --full``)."""
    import yaml

    lines, parent = [], None
    for s in entry.settings:
        value = yaml.safe_dump(s.to_json()["default"], default_flow_style=True, width=10**6)
        value = value.strip().removesuffix("...").strip()
        why = "; ".join(x for x in (s.doc, s.allowed) if x)
        why = f"  # {why}" if why else ""
        path = s.name.split(".")
        if len(path) == 3:  # a method's own setting: shown, not written (the method is a choice)
            lines.append(f"{indent}#   {path[0]}: {{{path[1]}: {{{path[2]}: {value}}}}}{why}")
        elif len(path) == 2:  # a nested sub-config's setting, under its parent
            if parent != path[0]:
                lines.append(f"{indent}{path[0]}:")
                parent = path[0]
            lines.append(f"{indent}  {path[1]}: {value}{why}")
        else:
            lines.append(f"{indent}{s.name}: {value}{why}")
    return lines


def full_yaml() -> str:
    """Every protocol's and every safety family's settings as commented-out YAML, to append to
    the example study (``safeadapt init --full``)."""
    from safeadapt.protocols import PROTOCOLS
    from safeadapt.safety import FAMILIES

    lines = [
        "",
        "# " + "-" * 97,
        "# Every setting, commented out, with its default, meaning and allowed values",
        "# (`safeadapt list <name>` shows the same). A protocol entry takes its protocol's",
        "# settings; a safety family takes its own under safety: {<family>: {...}}.",
        "#",
        "# protocols:",
    ]
    for name in PROTOCOLS.in_order():
        lines.append(f"#   {name}:")
        lines += settings_yaml(_protocol(name), "#     ")
    lines.append("# safety:")
    for name in FAMILIES.in_order():
        entry = _family(name)
        lines.append(f"#   {name}:" + ("" if entry.settings else " {}  # no settings"))
        lines += settings_yaml(entry, "#     ")
    return "\n".join(lines) + "\n"


__all__ = ["Entry", "describe", "full_yaml", "registries", "settings_yaml", "signature_settings"]
