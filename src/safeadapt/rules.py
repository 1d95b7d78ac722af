"""What a setting or an option may be, declared as data: a :class:`Rule` per config field
(``config.setting(default, doc, rule)``) or per loader option (``Annotated[type, rule]`` on a
backbone's or a built-in task's keyword parameter). One rule both checks a value -- before
anything of the size it bounds is allocated -- and describes the range in ``safeadapt list``,
so the two cannot disagree."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from safeadapt._registry import did_you_mean
from safeadapt.errors import InvalidConfig


@dataclass(frozen=True)
class Rule:
    """What a setting may be: ``words`` finish "must be ..." in the error and describe the range
    in ``safeadapt list``; ``test`` accepts a value; ``limit`` is an upper bound on a size (a
    number, or a list's length), refused before anything of that size is allocated (its own
    message). A list rule (``each``) names the rule of its ``entry`` and its ``least`` length,
    so the error can point at the entry that is wrong."""

    words: str | Callable[[], str]  # a function where the words are known late (registries)
    test: Callable[[Any], bool]
    limit: float | None = None
    hint: Callable[[Any], str] | None = None  # e.g. "Did you mean ...?" for a near miss
    entry: Rule | None = None
    least: int = 0

    @property
    def text(self) -> str:
        return self.words() if callable(self.words) else self.words

    @property
    def allowed(self) -> str:
        """The range as ``safeadapt list`` shows it (the words and the size bound)."""
        if self.limit is None:
            return self.text
        unit = " entries" if self.entry is not None else ""
        return f"{self.text}, at most {self.limit:,.0f}{unit}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` breaks the rule ("'x' must be ..." without the owner), or None."""
        if self.entry is not None:
            if not isinstance(value, tuple | list) or len(value) < self.least:
                return f"must be {self.text}; got {value!r}."
            if self.limit is not None and len(value) > self.limit:
                return (f"lists {len(value)} entries, above the limit of {self.limit:g}; give "
                        f"at most {self.limit:g}.")  # fmt: skip
            for i, item in enumerate(value):
                bad = self.entry.problem(item)
                if bad is not None:
                    return f"entry {i} {bad}"
            return None
        if self.limit is not None and _number(value) and value > self.limit:
            return f"is {value!r}, above the limit of {self.limit:g}; it must be <= {self.limit:g}."
        if not self.test(value):
            return f"must be {self.text}; got {value!r}." + (self.hint(value) if self.hint else "")
        return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def positive_number() -> Rule:
    return Rule("a positive finite number", lambda v: _number(v) and v > 0)


def non_negative_number() -> Rule:
    return Rule(">= 0", lambda v: _number(v) and v >= 0)


def count(least: int = 1, limit: int | None = None) -> Rule:
    """An integer >= ``least`` (at most ``limit``, a size bound)."""
    ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= least  # noqa: E731
    return Rule(f"an integer >= {least}", ok, limit)


def interval(low: float, high: float, closed_high: bool = False, closed_low: bool = True) -> Rule:
    """A number in ``[low, high)``; ``closed_high`` / ``closed_low`` choose the brackets."""
    left, right = "[" if closed_low else "(", "]" if closed_high else ")"

    def inside(v: Any) -> bool:
        return (_number(v) and (low <= v if closed_low else low < v)
                and (v <= high if closed_high else v < high))  # fmt: skip

    return Rule(f"in {left}{low:g}, {high:g}{right}", inside)


def each(entry: Rule, least: int = 1, limit: int | None = None) -> Rule:
    """A list of at least ``least`` (at most ``limit``) entries, each passing ``entry``."""
    many = "entry" if least == 1 else "entries"

    def words() -> str:
        return f"a list of at least {least} {many}, each {entry.text}"

    def ok(value: Any) -> bool:
        return (isinstance(value, tuple | list) and len(value) >= least
                and all(entry.problem(v) is None for v in value))  # fmt: skip

    return Rule(words, ok, limit, entry=entry, least=least)


def template(slot: str = "{}") -> Rule:
    """A text with ``slot`` in it (prompt templates: ``{}`` for the class name)."""
    return Rule(
        f"a text with '{slot}' for the class name", lambda v: isinstance(v, str) and slot in v
    )


def one_of(names: Callable[[], Sequence[str]] | Sequence[str]) -> Rule:
    """One of ``names`` (a list, or a function giving a registry's names when asked)."""
    listed = names if callable(names) else (lambda: tuple(names))
    return Rule(
        lambda: "one of " + ", ".join(listed()),
        lambda v: isinstance(v, str) and v in listed(),
        hint=lambda v: did_you_mean(str(v), listed()),
    )


def flag() -> Rule:
    return Rule("true or false", lambda v: isinstance(v, bool))


def option_rules(fn: Callable[..., Any]) -> dict[str, Rule]:
    """The rules a loader declares on its keyword options, as ``Annotated[type, rule]`` (a
    backbone's ``max_length: Annotated[int, count(1, 65_536)] = 128``): the one place both
    ``check_option_rules`` and ``safeadapt list`` read."""
    import typing

    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an unresolvable annotation in a user's builder: no declared rules
        return {}
    rules = {}
    for name, hint in hints.items():
        if typing.get_origin(hint) is typing.Annotated:
            found = [m for m in hint.__metadata__ if isinstance(m, Rule)]
            if found:
                rules[name] = found[0]
    return rules


def check_options(
    fn: Callable[..., Any], options: dict[str, Any], owner: str, skip: tuple[str, ...] = ()
) -> None:
    """A loader's options (a backbone's, a built-in task's) before it runs: each must be one of
    its keyword parameters (``skip``: those the caller fills in), then within the rule it
    declares (``option_rules``); ``owner`` names it in the error (``backbone 'minilm'``)."""
    import inspect

    accepted = [p for p in inspect.signature(fn).parameters if p not in skip]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise InvalidConfig(
            f"{owner} has no option {unknown[0]!r}; its options are "
            f"{', '.join(accepted) or 'none'}."
        )
    check_option_rules(fn, options, owner)


def check_option_rules(fn: Callable[..., Any], options: dict[str, Any], owner: str) -> None:
    """Every given option against its declared rule (``option_rules``), before ``fn`` runs and
    allocates anything; None passes (the loader's own default)."""
    for name, rule in option_rules(fn).items():
        value = options.get(name)
        if value is None:
            continue
        problem = rule.problem(value)
        if problem is not None:
            raise InvalidConfig(f"{owner} option {name!r} {problem}")
