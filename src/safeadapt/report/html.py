"""``report.html``: one self-contained file (figures inlined as PNG data URIs, no network).

Order: summary and recommendation, the rule behind it, the protocols x metrics table (mean ± std
over seeds, best in bold), the figures, then what was measured on what (budgets, notes, runs).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from safeadapt.files import write_atomic
from safeadapt.report.columns import table_columns
from safeadapt.report.plots import FIGURES
from safeadapt.results import RunRecord, StudySummary, Verdict
from safeadapt.results.fit_info import FitInfo
from safeadapt.results.shift import LabelAgreement

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.pick{background:#eef6ee;border-left:5px solid #2e7d32;padding:.8rem 1rem;margin:1rem 0}
.warn{background:#fff8e1;border-left:5px solid #f9a825;padding:.6rem 1rem;margin:.6rem 0}
.rule{background:#f6f6f6;padding:.6rem 1rem;font-size:.9rem;white-space:pre-wrap}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0;display:block;overflow-x:auto}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left} tr.front td:first-child::after{content:" ◆";color:#2e7d32}
figure{margin:1.2rem 0} figcaption{font-weight:600;margin-bottom:.3rem}
img.plot{max-width:100%;border:1px solid #eee}
.notes{font-size:.85rem;color:#444} code{background:#f3f3f3;padding:0 .2rem}
"""

CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.querySelectorAll('img.plot'));
  var ok = imgs.filter(function (i) {
    var r = i.getBoundingClientRect();
    return i.complete && i.naturalWidth > 0 && r.width > 0 && r.height > 0;
  });
  document.body.setAttribute('data-plots-total', String(imgs.length));
  document.body.setAttribute('data-plots-visible', String(ok.length));
});
"""


def scoped_style(root: str, style: str = STYLE) -> str:
    """``style`` with every rule confined to elements under ``root`` (a selector such as
    ``.safeadapt``); ``body`` rules apply to ``root`` itself. For HTML embedded in a page that is
    not ours (a Jupyter notebook), which the report's page-wide rules would otherwise restyle."""
    rules = []
    for chunk in style.split("}"):
        if "{" not in chunk:
            continue
        selectors, body = chunk.split("{", 1)
        scoped = [
            root if s.strip() == "body" else f"{root} {s.strip()}"
            for s in selectors.split(",")
            if s.strip()
        ]
        rules.append(f"{','.join(scoped)}{{{body.strip()}}}")
    return "\n".join(rules)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _table(summary: StudySummary) -> str:
    variants = summary.variants
    front = set(summary.recommendation.pareto_front)
    cols = table_columns(summary)
    best: dict[str, float] = {}
    for c in cols:
        vals = [v.scores[c.key].mean for v in variants if c.key in v.scores]
        if c.higher_is_better is not None and len(vals) > 1:
            best[c.key] = max(vals) if c.higher_is_better else min(vals)
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in cols)
    rows = []
    for v in variants:
        cells = []
        for c in cols:
            s = v.scores.get(c.key)
            if s is None:
                cells.append("<td>–</td>")
                continue
            text = _fmt(s.mean, c.fmt)
            if s.has_interval:
                plain = c.fmt.lstrip("+")
                how = html.escape(str(s.ci_method or ""), quote=True)
                text += (
                    f' <small title="{how}">[{_fmt(s.ci_low, plain)}, '
                    f"{_fmt(s.ci_high, plain)}]</small>"
                )
            if s.n > 1 and c.key != "trainable_parameters":
                text += f" ± {_fmt(s.std, c.fmt.lstrip('+'))}"
            if c.key in best and abs(s.mean - best[c.key]) < 1e-12:
                text = f"<b>{text}</b>"
            cells.append(f"<td>{text}</td>")
        cls = ' class="front"' if v.variant in front else ""
        rows.append(
            f"<tr{cls}><td>{html.escape(v.variant)} "
            f"<small>({len(v.seeds)} seed{'s' if len(v.seeds) != 1 else ''})</small></td>"
            + "".join(cells)
            + "</tr>"
        )
    return (
        f"<table><thead><tr><th>variant</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table><p class='notes'>Mean over seeds, [95 % interval from the per-example outputs: "
        "Wilson for one seed's accuracy, else a percentile bootstrap over examples (1,000 "
        "resamples); each safety family states its own method -- hover over an interval], ± "
        "standard deviation over seeds; best in bold (means only: see the paired verdicts for "
        "what is distinguishable); ◆ = on the selection Pareto front. Selection columns use "
        "validation data; every other column is scored once on test data. What each safety "
        "column measures: 'What was measured on what' below and <code>safeadapt list</code>."
        "</p>"
    )


def _checks_html(summary: StudySummary) -> str:
    checks = summary.checks
    if not checks:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{html.escape(str(c.value))}</td>"
        f"<td>{html.escape(str(c.bound))}</td>"
        f"<td><b>{'pass' if c.passed else 'FAIL'}</b></td>"
        f"<td>{html.escape(c.note or '')}</td></tr>"
        for c in checks.checks
    )
    verdict = "all checks pass" if checks.passed else "checks FAILED"
    return (
        f"<h2 id='checks'>Checks on {html.escape(checks.variant)}: {verdict}</h2>"
        "<table><thead><tr><th>check</th><th>value</th><th>bound</th><th></th><th>note</th>"
        f"</tr></thead><tbody>{rows}</tbody></table><p class='notes'>From the study's "
        f"<code>checks:</code>, on the {html.escape(checks.use)} of each score.</p>"
    )


def _pairwise_html(rec: Verdict) -> str:
    if not rec.pairwise:
        return ""
    body = "".join(
        f"<tr><td>{html.escape(r.metric)}</td><td>{html.escape(r.other)}</td>"
        f"<td>{r.difference:+.3f}</td><td>{r.only_pick} / {r.only_other}</td>"
        f"<td>{r.p_value:.3g} <small>({html.escape(r.test)})</small></td>"
        f"<td>{r.p_holm:.3g}</td>"
        f"<td><b>{html.escape(r.verdict)}</b></td></tr>"
        for r in rec.pairwise
    )
    return (
        f"<h2>Is the pick really different? ({html.escape(rec.variant)} vs each other)</h2>"
        "<table id='pairwise'><thead><tr><th>metric (test)</th><th>other</th><th>difference</th>"
        "<th>only pick right / only other right</th><th>p</th><th>p (Holm)</th>"
        f"<th>pick is</th></tr></thead><tbody>{body}</tbody></table><p class='notes'>Paired on "
        "the same test examples (and seeds both variants ran); Holm's correction over the "
        "comparisons of each metric; 'not distinguishable' at 0.05 means the data cannot tell "
        "the two apart.</p>"
    )


def _disagreements_html(rec: Verdict) -> str:
    dis = rec.disagreements
    if dis is None or not dis.splits:
        return ""
    pick, runner = html.escape(rec.variant), html.escape(dis.runner_up)
    titles = {
        "pick_wrong_runner_right": f"{pick} wrong, {runner} right",
        "pick_right_runner_wrong": f"{pick} right, {runner} wrong",
    }
    parts = [f"<h2>Where they disagree: {pick} vs {runner}</h2><ul class='notes'>"]
    for split, entry in dis.splits.items():
        for side, e in entry.sides():
            examples = "".join(
                f"<li><code>#{x.index}</code> {html.escape(x.input)} — label "
                f"<b>{html.escape(x.label)}</b>, {pick}: {html.escape(x.pick)}, "
                f"{runner}: {html.escape(x.runner_up)}</li>"
                for x in e.examples
            )
            parts.append(
                f"<li>{html.escape(split)}: {titles[side]}: {e.count} examples"
                + (
                    f"<details><summary>show</summary><ul>{examples}</ul></details>"
                    if examples
                    else ""
                )
                + "</li>"
            )
    parts.append(
        "</ul><p class='notes'>First seed of each; every example is in "
        "<code>predictions.parquet</code>.</p>"
    )
    return "".join(parts)


def _knob_notes(fit: FitInfo) -> list[str]:
    """What a run's knobs did, from its record: regularisers' penalty against the task loss,
    a hardened head's term and its difference from plain LP, WiSE-FT's alpha, the kept epoch."""
    notes = []
    for reg in fit.regularizers:
        ratio = reg.grad_norm_ratio
        notes.append(
            f"{reg.name} (weight {reg.weight:g}): penalty / task loss "
            f"{reg.penalty_to_loss:.3g}"
            + (f", gradient-norm ratio {ratio:.3g}" if ratio is not None else "")
        )
    eff = fit.head_effect
    if eff:
        parts = [f"{eff.method} head" + (f" (C {eff.C:g})" if eff.C is not None else "")]
        if eff.prompts is not None:  # a zero-shot head: what it was built from
            parts.append(f"from {len(eff.prompts)} prompt(s) per class")
        if eff.term_to_loss is not None:
            parts.append(f"term / loss {eff.term_to_loss:.3g}")
        if eff.val_disagreement_with_lp is not None:
            parts.append(f"{eff.val_disagreement_with_lp:.1%} of val predictions differ from LP")
        if eff.weight_norm_standardised is not None:
            parts.append(
                f"weight norm {eff.weight_norm_standardised:.3g} (LP "
                f"{eff.lp_weight_norm_standardised:.3g}, standardised features)"
            )
        if eff.head_pairwise_cosine is not None:
            parts.append(
                f"heads' cosine {eff.head_pairwise_cosine:.2f}, disagreement "
                f"{eff.head_pairwise_disagreement:.1%}"
            )
        notes.append(", ".join(parts))
    if fit.alpha is not None:
        notes.append(f"WiSE-FT alpha {fit.alpha:g} (chosen on ID val)")
    if fit.best_epoch == 0:
        notes.append("fine-tuning never beat its start on val: the start (epoch 0) was kept")
    return notes


def _kept_start_html(rec: Verdict, runs: Sequence[RunRecord]) -> str:
    """Say so when a run of the recommended variant is its start point, not what its protocol
    name promises (LP-FT whose early stopping kept the LP model)."""
    from safeadapt.protocols.start import kept_start_note

    notes = [
        f"seed {r.seed}: {kept_start_note(r)}"
        for r in runs
        if r.variant == rec.variant and kept_start_note(r)
    ]
    if not notes:
        return ""
    return '<p class="warn" id="kept-start"><b>Note:</b> ' + html.escape("; ".join(notes)) + ".</p>"


def _knobs_html(runs: Sequence[RunRecord]) -> str:
    rows = []
    for r in runs:
        notes = _knob_notes(r.fit)
        if notes:
            rows.append(
                f"<tr><td>{html.escape(r.run_id)}</td><td>{html.escape('; '.join(notes))}</td></tr>"
            )
    if not rows:
        return ""
    return (
        "<h2>What each knob did</h2><p class='notes'>A regulariser or hardening term that weighs "
        "nothing against the task loss makes its protocol a copy of another; these are the "
        "measured effects.</p><table id='knobs'><tr><th>run</th><th>effect</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _probe_cell(probe: LabelAgreement | None) -> str:
    """Probe fitted on the reference set scored on the other set / cross-validated on it."""
    return "–" if probe is None else f"{probe.transfer:.3f} / {probe.own:.3f}"


def _preflight_html(summary: StudySummary, figures: dict[str, bytes]) -> str:
    pre = summary.preflight
    if not pre:
        return ""
    parts = ["<h2>Pre-flight checks (before training)</h2>"]
    shift = pre.shift
    if shift is not None:
        ref = shift.reference
        rows = "".join(
            f"<tr><td>{html.escape(ref)} vs {html.escape(k)}</td>"
            f"<td>{c.mmd.mmd2:.4f}</td><td>{c.mmd.p_value:.3g}</td>"
            f"<td>{c.classifier.auroc:.3f}</td><td>{c.classifier.p_value:.3g}</td>"
            f"<td>{c.ks.significant_dimensions}/{c.ks.dimensions}</td>"
            f"<td>{'<b>yes</b>' if c.shift_detected else 'no'}</td>"
            f"<td>{_probe_cell(c.probe)}</td></tr>"
            for k, c in shift.comparisons.items()
        )
        typical = "".join(
            f"<li><b>{html.escape(side)}</b> (vs {html.escape(other if side == ref else ref)}): "
            + " | ".join(html.escape(str(e)[:80]) for e in examples[:3])
            + "</li>"
            for other, c in shift.comparisons.items()
            for side, examples in c.typical.items()
        )
        probe = shift.probe
        probe_txt = (
            f" A linear probe on {html.escape(ref)} reaches "
            f"{probe.accuracy:.3f} (majority class {probe.majority:.3f}, "
            f"{probe.folds}-fold CV)."
            if probe is not None
            else ""
        )
        parts.append(
            "<table><thead><tr><th>sets</th><th>MMD²</th><th>MMD p</th><th>domain clf AUROC</th>"
            f"<th>clf p</th><th>KS dims (BH)</th><th>shift at {shift.level}</th>"
            "<th>probe: transfer / own</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><p class='notes'>{html.escape(shift.advice)}"
            f"{probe_txt}</p>"
        )
        if typical:
            parts.append(
                "<details><summary>Most typical examples of each side (domain classifier)"
                f"</summary><ul class='notes'>{typical}</ul></details>"
            )
        if "shift" in figures:
            data = base64.b64encode(figures["shift"]).decode()
            parts.append(
                '<figure id="fig-shift"><figcaption>Embeddings: 2-D PCA by set (KDE contours) '
                'and by class</figcaption><img class="plot" alt="shift PCA" '
                f'src="data:image/png;base64,{data}"></figure>'
            )
    audit = pre.audit
    if audit is not None:
        rows = "".join(
            f"<tr><td>{html.escape(g)}</td><td>{r.count}</td><td>{r.share:.1%}</td><td>"
            + ", ".join(f"{html.escape(k)} {v:.2f}" for k, v in r.label_rate.items())
            + "</td></tr>"
            for g, r in audit.groups.items()
        )
        flags = "".join(f"<li>{html.escape(f)}</li>" for f in audit.flags) or "<li>none</li>"
        parts.append(
            "<h3>Training-set audit by group</h3><table><thead><tr><th>group</th><th>count</th>"
            f"<th>share</th><th>label rate</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<p class='notes'>Cramér's V {audit.cramers_v:.3f}; mutual information "
            f"{audit.mutual_information_nats:.4f} nats. Flags:</p><ul class='notes'>{flags}</ul>"
        )
    return "".join(parts)


def render_report(
    summary: StudySummary, runs: Sequence[RunRecord], figures: dict[str, bytes] | None = None
) -> str:
    rec = summary.recommendation
    blocks = []
    for key, (caption, fn) in FIGURES.items():
        try:
            png = fn(runs, summary)
        except Exception as err:  # no figure may take the report down: a note takes its place
            import logging

            family = key.removeprefix("family_")
            logging.getLogger(__name__).warning("figure %s failed: %r", key, err)
            blocks.append(
                f'<figure id="fig-{html.escape(key)}"><figcaption>{html.escape(caption)}'
                f'</figcaption><div class="notes">This figure ({html.escape(family)}) could not '
                f"be drawn ({html.escape(type(err).__name__)}: "
                f"{html.escape(' '.join(str(err).split())[:200])}); its numbers are in the "
                "table above and in variants.csv.</div></figure>"
            )
            continue
        if png is None:
            continue
        data = base64.b64encode(png).decode()
        doc = " ".join((fn.__doc__ or "").split())
        blocks.append(
            f'<figure id="fig-{key}"><figcaption>{html.escape(caption)}</figcaption>'
            f'<img class="plot" alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<div class="notes">{html.escape(doc)}</div></figure>'
        )
    facts = [
        f"Task <code>{html.escape(summary.task)}</code> ({summary.modality}), backbone "
        f"<code>{html.escape(str(summary.backbone))}</code>, seeds {list(summary.seeds)}.",
        "Split sizes: "
        + ", ".join(f"{html.escape(k)} {v}" for k, v in summary.sizes.items())
        + ".",
        "Classes: " + ", ".join(html.escape(str(n)) for n in summary.label_names) + ".",
    ]
    facts += [html.escape(f) for f in summary.safety or ()]
    facts += [html.escape(n) for n in summary.notes]
    runs_list = "".join(
        f"<li><code>{html.escape(r.run_id)}</code>: ID "
        f"{r.test.accuracy:.3f}, fit {r.fit_seconds:.1f} s</li>"
        for r in runs
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>safeadapt report: {html.escape(summary.study)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(summary.study)}</h1>
<p class="sub">{html.escape(summary.task)} · {html.escape(str(summary.backbone))} ·
{len(runs)} runs · {len(summary.variants)} variants</p>
<div class="pick" id="recommendation"><b>Recommended: {html.escape(rec.variant)}</b>
<small>({html.escape(rec.chosen.title)})</small><br>
{html.escape(rec.reason)}</div>
{_kept_start_html(rec, runs)}
<p class="notes" id="splits-seen">{html.escape(rec.splits_seen)}</p>
<details><summary>How the recommendation is made</summary>
<div class="rule">{html.escape(rec.rule)}</div></details>
{_checks_html(summary)}
{_preflight_html(summary, figures or {})}
<h2>Protocols × metrics</h2>
{_table(summary)}
{_pairwise_html(rec)}
{_disagreements_html(rec)}
{_knobs_html(runs)}
<h2>Figures</h2>
{"".join(blocks)}
<h2>What was measured on what</h2>
<ul class="notes">{"".join(f"<li>{f}</li>" for f in facts)}</ul>
<details><summary>Runs</summary><ul class="notes">{runs_list}</ul></details>
<script>{CHECK_SCRIPT}</script>
</body></html>
"""


def write_report(
    summary: StudySummary,
    runs: Sequence[RunRecord],
    path: str | Path,
    figures: dict[str, bytes] | None = None,
) -> Path:
    path = Path(path)
    write_atomic(path, render_report(summary, runs, figures))
    return path
