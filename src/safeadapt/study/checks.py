"""Pass / fail gates on a study's result, for CI: ``checks:`` in the study.

Each bound is ``min_<score>`` or ``max_<score>`` for any score the study table has -- the
built-in ones (``id_accuracy``, ``ood_accuracy``, ``ece``, ``val_accuracy``, ``accuracy:ood:<s>``,
``fit_seconds``, ...) and every safety family's (``safeadapt list``): e.g. ``max_ece: 0.1``,
``min_ood_accuracy: 0.7``, ``min_forgetting: -0.02`` (at most 2 points forgotten: forgetting is
after - before), ``min_worst_group_accuracy: 0.6``, ``max_negative_flip_rate: 0.05``. They are checked
on one variant: the recommended one (default) or the one named by ``variant``. ``use: interval``
checks the pessimistic end of each score's 95 % interval instead of its mean (a bound the data
support, not one a lucky sample passes). ``shift: fail`` fails when the pre-flight two-sample
tests found a shift between the training data and any other set (``warn``: reported only).

A score that was not measured fails its check and says so. ``safeadapt run`` / ``safeadapt
check`` exit 1 when a check fails (``--junit FILE`` writes JUnit XML for CI).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from safeadapt._registry import did_you_mean
from safeadapt.config import require
from safeadapt.errors import InvalidConfig
from safeadapt.results import SCORES, CheckReport, CheckResult, StudySummary


def known_scores() -> list[str]:
    from safeadapt.safety import score_columns

    return [*SCORES, *(key for key, *_ in score_columns())]


@dataclass(frozen=True)
class ChecksSpec:
    """``variant``: 'recommended' or a variant name; ``use``: 'mean' or 'interval';
    ``shift``: 'off', 'warn' or 'fail'; ``bounds``: ``{"min_<score>" | "max_<score>": value}``."""

    variant: str = "recommended"
    use: str = "mean"
    shift: str = "off"
    bounds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(
            self.use in ("mean", "interval"), "study 'checks.use' must be 'mean' or 'interval'."
        )
        require(
            self.shift in ("off", "warn", "fail"),
            f"study 'checks.shift' must be 'off', 'warn' or 'fail'; got {self.shift!r}.",
        )
        require(
            isinstance(self.variant, str) and self.variant,
            "study 'checks.variant' must be 'recommended' or a variant name.",
        )
        known = known_scores()
        for name, value in self.bounds.items():
            side, _, key = name.partition("_")
            require(
                side in ("min", "max") and key,
                f"study 'checks': {name!r} is not a bound; write min_<score> or max_<score>.",
            )
            if key not in known and not key.startswith("accuracy:ood:"):
                hint = did_you_mean(key, known, prefix=f"{side}_")
                raise InvalidConfig(
                    f"study 'checks': no score {key!r} to bound.{hint} Scores: "
                    f"{', '.join(known)}, accuracy:ood:<split>."
                )
            require(
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value),
                f"study 'checks' {name!r} must be a number; got {value!r}.",
            )

    @classmethod
    def from_raw(cls, raw: Any) -> ChecksSpec | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise InvalidConfig(
                f"study 'checks' must be a mapping such as {{max_ece: 0.1}}; got {raw!r}."
            )
        settings = {k: raw[k] for k in ("variant", "use", "shift") if k in raw}
        bounds = {k: v for k, v in raw.items() if k not in settings}
        return cls(**settings, bounds={k: float(v) if _number(v) else v for k, v in bounds.items()})


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def evaluate_checks(summary: StudySummary, spec: ChecksSpec) -> CheckReport:
    """Every bound of ``spec`` on the checked variant's scores, and the shift check."""
    names = [v.variant for v in summary.variants]
    name = summary.recommendation.variant if spec.variant == "recommended" else spec.variant
    if name not in names:
        raise InvalidConfig(
            f"study 'checks.variant': no variant {name!r}; the study has {', '.join(names)}."
        )
    scores = summary.variant(name).scores
    rows = []
    for bound_name, bound in spec.bounds.items():
        side, _, key = bound_name.partition("_")
        entry = scores.get(key)
        if entry is None:
            rows.append(
                CheckResult(bound_name, key, bound, None, False, side, "not measured in this study")
            )
            continue
        value, note = entry.mean, None
        edge = entry.ci_low if side == "min" else entry.ci_high
        if spec.use == "interval" and edge is not None:
            value, note = edge, f"95 % interval {'low' if side == 'min' else 'high'} end"
        passed = bool(value >= bound if side == "min" else value <= bound)
        rows.append(CheckResult(bound_name, key, bound, value, passed, side, note))
    if spec.shift != "off":
        shift = summary.preflight.shift
        if shift is None:
            rows.append(
                CheckResult("shift", "preflight shift", None, None, spec.shift == "warn",
                            note="the shift pre-flight did not run")
            )  # fmt: skip
        else:
            found = sorted(k for k, c in shift.comparisons.items() if c.shift_detected)
            rows.append(
                CheckResult(
                    "shift",
                    "preflight shift",
                    "none detected",
                    ", ".join(found) or "none",
                    passed=not found or spec.shift == "warn",
                    note="warn only" if found and spec.shift == "warn" else "",
                )
            )
    return CheckReport(name, spec.use, all(r.passed for r in rows), tuple(rows))


JUNIT_MARK = "<!-- written by safeadapt -->"
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _xml_text(value: Any) -> str:
    """Text XML 1.0 can hold: control characters (not even escapable there) become U+FFFD."""
    return _XML_BAD.sub("\ufffd", str(value))


def is_our_junit(path) -> bool:
    """Whether ``path`` is a JUnit file safeadapt wrote (so ``--junit`` may replace it)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return JUNIT_MARK in head or 'testsuite name="safeadapt checks: ' in head


def junit_error_xml(study: str, kind: str, message: str) -> str:
    """JUnit XML for a study that could not be judged: one test case with an ``<error>``
    (CI tells it from a failed check, which is a ``<failure>``)."""
    from xml.sax.saxutils import escape, quoteattr

    study, message = _xml_text(study), _xml_text(message)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{JUNIT_MARK}\n'
        f'<testsuite name={quoteattr("safeadapt checks: " + study)} tests="1" failures="0" '
        f'errors="1"><testcase classname={quoteattr("safeadapt." + study)} name="study">'
        f"<error type={quoteattr(kind)} message={quoteattr(message)}>{escape(message)}</error>"
        "</testcase></testsuite>\n"
    )


def junit_xml(result: CheckReport, study: str) -> str:
    """The checks as JUnit XML: one test case per check, a failure element when it fails."""
    cases = [
        (r.name, None if r.passed else f"{r.score}: value {r.value!r}, bound {r.side or ''} "
         f"{r.bound!r}")
        for r in result.checks
    ]  # fmt: skip
    return junit_suite(f"safeadapt checks: {study}", f"safeadapt.{study}", cases)


def junit_suite(suite: str, classname: str, cases: list[tuple[str, str | None]]) -> str:
    """A JUnit document of ``(name, failure message or None)`` test cases, marked as written by
    safeadapt (so ``--junit`` may replace it later), every text made safe for XML."""
    from xml.sax.saxutils import escape, quoteattr

    body = []
    for name, failure in cases:
        detail = None if failure is None else _xml_text(failure)
        inner = "" if detail is None else (
            f"<failure message={quoteattr(detail)}>{escape(detail)}</failure>")  # fmt: skip
        body.append(f"<testcase classname={quoteattr(_xml_text(classname))} "
                    f"name={quoteattr(_xml_text(name))}>{inner}</testcase>")  # fmt: skip
    failures = sum(failure is not None for _, failure in cases)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{JUNIT_MARK}\n'
        f'<testsuite name={quoteattr(_xml_text(suite))} tests="{len(cases)}" '
        f'failures="{failures}" errors="0">' + "".join(body) + "</testsuite>\n"
    )
