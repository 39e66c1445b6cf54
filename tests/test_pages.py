"""Feedback pages in a real browser: headless Chromium (Debian's, installed by .ci/run) opens
the class page and each student's page; every plot decodes, tables are there, screenshots
are not blank."""

from __future__ import annotations

import csv
import dataclasses
import shutil
import subprocess

import pytest

from grader.pipeline import Submission, grade_many
from grader.report.terminal import write_class_outputs
from tests.conftest import CORPUS, GRADER, ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="skipped: Debian's chromium is not installed"),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,2400",
]
# student -> (assignment, file, how many plots the page must show)
CLASS = {
    "ana": ("perceptron", ROOT / "reference" / "perceptron.py", 2),  # loss curve, boundary
    "ben": ("mnist_mlp", CORPUS / "broken" / "mnist_lr_too_high.py", 3),  # + confusion, errors
    "cho": ("autoencoder", ROOT / "reference" / "autoencoder.py", 3),  # + reconstructions, latent
    "dan": ("recursion", CORPUS / "broken" / "recursion_syntax_error.py", 0),
}


@pytest.fixture(scope="module")
def out(course, runner, tmp_path_factory):
    subs = [Submission(s, course.assignment(a), path) for s, (a, path, _) in CLASS.items()]
    results = grade_many(subs, runner, jobs=2)
    folder = tmp_path_factory.mktemp("pages")
    write_class_outputs(results, folder)
    return folder


def browse(page, tmp_path, name):
    profile = tmp_path / f"profile-{name}"
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    shot = tmp_path / f"{name}.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    return dom, shot


def distinct_colours(png) -> int:
    from PIL import Image

    with Image.open(png) as im:
        return len(im.convert("RGB").resize((300, 600)).getcolors(300 * 600))


def test_class_page_renders(out, tmp_path):
    dom, shot = browse(out / "index.html", tmp_path, "index")
    assert 'data-images-ok="true"' in dom and 'data-images="1"' in dom  # the score histogram
    for heading in ("Class summary", "Pass rate per check", "Most common failure messages"):
        assert heading in dom
    for student in CLASS:
        assert f'href="{student}/' in dom
    assert "syntax error" in dom  # a common failure message is listed
    assert shot.is_file() and distinct_colours(shot) > 20


@pytest.mark.parametrize("student", sorted(CLASS))
def test_student_page_renders_with_its_plots(out, tmp_path, student):
    assignment, _path, plots = CLASS[student]
    page = out / student / assignment / "feedback.html"
    dom, shot = browse(page, tmp_path, student)
    assert f'data-images="{plots}"' in dom and 'data-images-ok="true"' in dom
    assert "<table>" in dom and f"{assignment} — {student}" in dom
    assert shot.is_file() and distinct_colours(shot) > (20 if plots else 5)


def test_hidden_check_shows_no_message(course, runner, tmp_path):
    spec = course.assignment("intro_numpy")
    hidden = tuple(
        dataclasses.replace(c, visibility="after_due_date") if c.name == "weight update" else c
        for c in spec.checks
    )
    spec = dataclasses.replace(spec, checks=hidden)
    subs = [Submission("eve", spec, CORPUS / "broken" / "intro_wrong_update.py")]
    result = grade_many(subs, runner, jobs=1)[0]
    write_class_outputs([result], tmp_path)
    page = (tmp_path / "eve" / "intro_numpy" / "feedback.html").read_text()
    assert "(hidden check: after due date)" in page
    assert "update_weights(&lt;" not in page and "update_weights(<" not in page  # hidden
    assert "refine(0.25, 3.0, 1.1, 0.5) is 0.3667" in page  # a visible one's


def test_demo_grades_the_example_class_and_its_pages_render(tmp_path, user_cache):
    """`grader demo` grades the example class, writes the gradebook, the class page and every
    student's page (with the reference's loss curve); all render in Chromium."""
    out = subprocess.run(
        [*GRADER, "demo", "--out", str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"demo results are in {tmp_path / 'demo'}" in out.stdout.replace("\n", "")
    rows = list(csv.DictReader((tmp_path / "demo" / "gradebook.csv").open()))
    totals = sorted(float(r["total"]) for r in rows)
    assert len(rows) >= 3 and totals[0] < totals[-1]  # weaker and stronger students
    page = (tmp_path / "demo" / "alice" / "perceptron" / "feedback.html").read_text()
    assert "loss curve: your recorded loss, and the reference&#39;s (dashed)" in page
    assert list((user_cache / "reference").glob("perceptron-*.json"))  # cached per user
    assert not (tmp_path / "demo" / ".reference").exists()
    pages = sorted((tmp_path / "demo").glob("*/*/feedback.html"))
    assert len(pages) == 13
    for page in [tmp_path / "demo" / "index.html", *pages]:
        dom, _shot = browse(page, tmp_path, page.parent.name + page.parent.parent.name)
        assert 'data-images-ok="true"' in dom, page
