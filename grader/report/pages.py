"""Feedback people want to read: a self-contained HTML page per submission and a class page.

Views of results only. Plots are drawn here with matplotlib (Agg) from the plain figure data a
result carries (`_figures`) and embedded as PNG data URIs, so a page is one file that opens
anywhere. Hidden checks show only what their visibility allows: their name and points, never
their message.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import numpy as np
from jinja2 import Environment

from grader.results import SubmissionResult, write_atomic
from grader.run.names import name_problem
from grader.run.store import grader_fingerprint

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.passed { color: #11691f; font-weight: 600; } td.failed { color: #b00020; font-weight: 600; }
td.skipped { color: #8a6d00; font-weight: 600; } td.error { color: #7b1fa2; font-weight: 600; }
pre { background: #f6f6f6; padding: .8em; white-space: pre-wrap; overflow-x: auto; }
.score { font-size: 1.3em; font-weight: 700; } .muted { color: #666; }
figure { display: inline-block; margin: .5em 1em .5em 0; } figure img { max-width: 520px; }
figcaption { color: #555; font-size: .9em; }
"""

# Tells a browser test that every embedded image decoded (naturalWidth > 0).
_READY = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-images-ok', ok ? 'true' : 'false');
});
</script>
"""

_SUBMISSION = _ENV.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ r.assignment }}: {{ r.student }}</title><style>{{ style }}</style></head>
<body>
<h1>{{ r.assignment }} &mdash; {{ r.student or "submission" }}</h1>
<p class="score">{{ "%g"|format(r.score) }} / {{ "%g"|format(r.max_score) }}</p>
<p class="muted">file {{ r.file }} &middot; run: {{ r.run_status }} &middot; graded in {{ "%.1f"|format(r.timing.get("total_s", 0)) }} s</p>
{% if r.data %}<p class="muted">data: {{ r.data.name }} ({{ r.data.served_train }} training and {{ r.data.served_validation }} validation images served, {{ r.data.heldout }} held out; sha256 {{ r.data.sha256 }})</p>{% endif %}
{% if r.problems %}<h2>Problems</h2>{% for p in r.problems %}<pre>{{ p }}</pre>{% endfor %}{% endif %}
<h2>Checks</h2>
<table><tr><th>check</th><th>status</th><th>points</th><th>message</th></tr>
{% for c in checks %}<tr><td>{{ c.name }}</td><td class="{{ c.status }}">{{ c.status }}</td><td>{{ "%g"|format(c.points) }} / {{ "%g"|format(c.max_points) }}</td><td><pre>{{ c.message }}</pre></td></tr>
{% endfor %}</table>
{% if plots %}<h2>Plots</h2>{% for title, uri in plots %}<figure><img alt="{{ title }}" src="{{ uri }}"><figcaption>{{ title }}</figcaption></figure>{% endfor %}{% endif %}
{% if r.notes %}<h2>Notes</h2><ul>{% for n in r.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% if r.log %}<h2>Your output (last lines)</h2><pre>{{ r.log[-4000:] }}</pre>{% endif %}
{{ ready|safe }}
</body></html>
"""
)

_CLASS = _ENV.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Class summary</title><style>{{ style }}</style></head>
<body>
<h1>Class summary</h1>
<p class="muted">{{ results|length }} submission(s), {{ students|length }} student(s)</p>
{% for uri in histograms %}<figure><img alt="score distribution" src="{{ uri }}"><figcaption>score distribution</figcaption></figure>{% endfor %}
<h2>Students</h2>
<table><tr><th>student</th><th>assignment</th><th>score</th><th>run</th><th>time (s)</th><th title="the student's own code, inside the job">their code (s)</th><th title="resident memory of the job at its peak">memory (MB)</th><th title="memory that was the job's own, beyond what it shared with a warm worker">own memory (MB)</th><th>feedback</th></tr>
{% for r, link in rows %}<tr><td>{{ r.student }}</td><td>{{ r.assignment }}</td><td>{{ "%g"|format(r.score) }} / {{ "%g"|format(r.max_score) }}</td><td>{{ r.run_status }}</td><td>{{ "%.1f"|format(r.timing.get("total_s", 0)) }}</td><td>{{ "%.1f"|format(r.timing.get("student_s", 0)) }}</td><td>{{ "%.0f"|format(r.timing.get("peak_rss_mb", 0)) }}</td><td>{{ "%.0f"|format(r.timing.get("private_mb", 0)) }}</td><td>{% if link %}<a href="{{ link }}">feedback</a>{% endif %}</td></tr>
{% endfor %}</table>
<h2>Pass rate per check</h2>
<table><tr><th>assignment</th><th>check</th><th>passed</th><th>failed</th><th>skipped</th><th>pass rate</th></tr>
{% for row in rates %}<tr><td>{{ row[0] }}</td><td>{{ row[1] }}</td><td>{{ row[2] }}</td><td>{{ row[3] }}</td><td>{{ row[4] }}</td><td>{{ row[5] }}</td></tr>
{% endfor %}</table>
<h2>Most common failure messages</h2>
<table><tr><th>count</th><th>assignment / check</th><th>message</th></tr>
{% for (where, message), count in common %}<tr><td>{{ count }}</td><td>{{ where }}</td><td><pre>{{ message }}</pre></td></tr>
{% endfor %}</table>
{{ ready|safe }}
</body></html>
"""
)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(figures: dict, reference: dict | None = None) -> list[tuple[str, str]]:
    """(title, PNG data URI) of every plot the figure data allow, in page order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: list[tuple[str, str]] = []
    reference = reference or {}
    if figures.get("loss_curve"):
        out.append(_loss_plot(plt, figures["loss_curve"], reference.get("loss_curve")))
    if figures.get("boundary"):
        out.append(_boundary_plot(plt, figures["boundary"], reference.get("boundary")))
    if figures.get("confusion"):
        out.extend(_confusion_plots(plt, figures["confusion"]))
    if figures.get("autoencoder"):
        out.extend(_autoencoder_plots(plt, figures["autoencoder"]))
    return out


def _loss_plot(plt, curves: dict, reference: dict | None) -> tuple[str, str]:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(values, label=f"yours: {name}")
    for name, values in (reference or {}).items():
        ax.plot(values, "--", color="gray", label=f"reference: {name}")
    ax.set_xlabel("record")
    ax.set_ylabel("loss")
    ax.legend()
    title = "loss curve: your recorded loss" + (
        ", and the reference's (dashed)" if reference else ""
    )
    return title, _png(fig)


def _regions(ax, b: dict, title: str) -> None:
    ext = b["extent"]
    ax.imshow(
        np.array(b["predicted"]),
        origin="lower",
        extent=ext,
        aspect="auto",
        cmap="coolwarm",
        alpha=0.35,
        vmin=0,
        vmax=1,
    )
    xs = np.linspace(ext[0], ext[1], len(b["truth"][0]))
    ys = np.linspace(ext[2], ext[3], len(b["truth"]))
    ax.contour(xs, ys, np.array(b["truth"]), levels=[0], colors="k", linewidths=2)
    pts, cls = np.array(b["points"]), np.array(b["classes"])
    ax.scatter(pts[cls == 1, 0], pts[cls == 1, 1], s=8, c="r", label="C1")
    ax.scatter(pts[cls == 0, 0], pts[cls == 0, 1], s=8, c="b", label="C0")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    ax.legend(loc=1)


def _boundary_plot(plt, b: dict, reference: dict | None = None) -> tuple[str, str]:
    """The student's own network's decision regions (evaluated by the grader from their
    graph), beside the reference's when it ran."""
    panels = 2 if reference else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 5), squeeze=False)
    _regions(axes[0][0], b, "your network")
    if reference:
        _regions(axes[0][1], reference, "the reference solution")
    beside = ", beside the reference's" if reference else ""
    return (
        f"your network's decision regions (shaded){beside}, the true boundary {b['formula']} "
        f"(black), held-out points",
        _png(fig),
    )


def _confusion_plots(plt, c: dict) -> list[tuple[str, str]]:
    out = []
    fig, ax = plt.subplots(figsize=(5, 5))
    m = np.array(c["matrix"])
    ax.imshow(m, cmap="Blues")
    for i in range(10):
        for j in range(10):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    out.append(("confusion matrix on the held-out images", _png(fig)))
    if c["wrong"]:
        fig, axes = plt.subplots(1, len(c["wrong"]), figsize=(1.4 * len(c["wrong"]), 1.8))
        for ax, w in zip(np.atleast_1d(axes), c["wrong"], strict=True):
            ax.imshow(np.array(w["image"]), cmap="gray")
            ax.set_title(f"{w['truth']}→{w['predicted']}", fontsize=9)
            ax.axis("off")
        out.append(("misclassified held-out images (true → predicted)", _png(fig)))
    return out


def _autoencoder_plots(plt, a: dict) -> list[tuple[str, str]]:
    out = []
    n = len(a["originals"])
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 2.8))
    for k in range(n):
        axes[0, k].imshow(np.array(a["originals"][k]).reshape(28, 28), cmap="gray")
        axes[1, k].imshow(np.array(a["reconstructions"][k]).reshape(28, 28), cmap="gray")
        axes[0, k].axis("off")
        axes[1, k].axis("off")
    out.append(("held-out images (top) and your reconstructions (bottom)", _png(fig)))
    fig, ax = plt.subplots(figsize=(5, 5))
    z, labels = np.array(a["latent"]), np.array(a["labels"])
    for digit in sorted(set(labels.tolist())):
        ax.scatter(z[labels == digit, 0], z[labels == digit, 1], s=8, label=str(digit))
    ax.legend()
    ax.set_xlabel("Z1")
    ax.set_ylabel("Z2")
    out.append(("latent space of held-out images, by digit", _png(fig)))
    return out


def submission_page(result: SubmissionResult, reference_curve: dict | None = None) -> str:
    """One self-contained page: every check (hidden ones without their message), the plots."""
    checks = []
    for c in result.checks:
        message = (
            c.message
            if c.visibility == "visible"
            else f"(hidden check: {c.visibility.replace('_', ' ')})"
        )
        checks.append(
            dict(
                name=c.name,
                status=c.status,
                points=c.points,
                max_points=c.max_points,
                message=message,
            )
        )
    plots = _plots(result.figures, reference_curve)
    return _SUBMISSION.render(r=result, checks=checks, plots=plots, style=_STYLE, ready=_READY)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else ""


def _feedback_link(r: SubmissionResult) -> str:
    """The relative link to a student's page, URL-quoted; none for a refused name (it has no
    folder of its own)."""
    if name_problem(r.student) is not None:
        return ""
    return f"{quote(r.student)}/{quote(r.assignment)}/feedback.html"


def class_page(results: list[SubmissionResult]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histograms = []
    if results:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        fractions = [r.score / r.max_score if r.max_score else 0.0 for r in results]
        ax.hist(fractions, bins=[k / 10 for k in range(11)], color="#4a7bd0", edgecolor="white")
        ax.set_xlabel("score (fraction of the points)")
        ax.set_ylabel("submissions")
        histograms.append(_png(fig))
    counts: dict[tuple[str, str], Counter] = {}
    common: Counter = Counter()
    for r in results:
        for c in r.checks:
            counts.setdefault((r.assignment, c.name), Counter())[c.status] += 1
            if c.status == "failed" and c.visibility == "visible":
                common[(f"{r.assignment} / {c.name}", _first_line(c.message))] += 1
    rates = []
    for (assignment, name), n in sorted(counts.items()):
        total = sum(n.values()) - n["skipped"]
        rate = f"{n['passed'] / total:.0%}" if total else "-"
        rates.append((assignment, name, n["passed"], n["failed"] + n["error"], n["skipped"], rate))
    return _CLASS.render(
        results=results,
        rows=[
            (r, _feedback_link(r)) for r in sorted(results, key=lambda r: (r.student, r.assignment))
        ],
        students={r.student for r in results},
        histograms=histograms,
        rates=rates,
        common=common.most_common(10),
        style=_STYLE,
        ready=_READY,
    )


def write_pages(results: list[SubmissionResult], out: Path, references: dict | None = None) -> Path:
    """`OUT/<student>/<assignment>/feedback.html` for each result (with the reference's loss
    curve when `references` has it), and `OUT/index.html`. A student's page that was drawn from
    exactly this result, this reference and this grader is left as it is (drawing the plots is
    the slow part of re-grading an unchanged class); the class page is always drawn again."""
    for r in results:
        if name_problem(r.student) is not None:  # refused: no folder of its own
            continue
        reference = (references or {}).get(r.assignment)
        path = out / r.student / r.assignment / "feedback.html"
        head = f"<!doctype html>\n<!-- grader-page {_page_digest(r, reference)} -->\n"
        if _starts_with(path, head):
            continue
        page = submission_page(r, reference).removeprefix("<!doctype html>\n")
        write_atomic(path, head + page)
    index = out / "index.html"
    write_atomic(index, class_page(results))
    return index


def _page_digest(result: SubmissionResult, reference: dict | None) -> str:
    """What a student's page is drawn from: the result, the reference's figures, the grader."""
    data = [result.to_dict(), reference, grader_fingerprint()]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _starts_with(path: Path, text: str) -> bool:
    try:
        with path.open(encoding="utf-8") as fh:
            return fh.read(len(text)) == text
    except (OSError, UnicodeDecodeError):
        return False


__all__ = ["class_page", "submission_page", "write_pages"]
