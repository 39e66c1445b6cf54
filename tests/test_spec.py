"""Assignment specs: every real one loads; every mistake names the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from grader.course.discovery import find_course
from grader.course.spec import VISIBILITIES, Assignment, load_assignment
from grader.errors import SpecError

MAIN = Path(__file__).resolve().parent.parent
REAL = find_course(MAIN)

# A small valid spec; each test below changes one thing in it.
VALID = """\
title = "Demo"
source = "seed 004, Demo"
api = "tf1"

[run]
seed = 1

[collect]
params = ["weights"]

[task]
generator = "halfplane"
input = "bias_column"
layers = [{ weight = "weights.output", activation = "sigmoid" }]

[[checks]]
check = "decision_boundary"
points = 3
params = { minimum = 0.9 }

[[checks]]
name = "wiring"
check = "wiring"
points = 2
visibility = "hidden"
"""


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "demo" / "assignment.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def spec_error(tmp_path: Path, text: str, *fragments: str) -> str:
    path = write_spec(tmp_path, text)
    with pytest.raises(SpecError, match=re.escape(str(path))) as info:
        load_assignment(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize("name", REAL.names())
def test_every_real_spec_loads(name):
    assignment = REAL.assignment(name)
    assert isinstance(assignment, Assignment)
    assert assignment.name == name
    assert assignment.title and assignment.source
    assert assignment.api in ("numpy", "tf1", "keras")
    assert assignment.checks
    assert assignment.points > 0
    assert len({c.name for c in assignment.checks}) == len(assignment.checks)
    assert all(c.visibility in VISIBILITIES for c in assignment.checks)
    ref = REAL.reference(name)
    # One reference file, or a folder holding exactly the files a multi-file spec names.
    if assignment.files:
        assert sorted(p.name for p in ref.glob("*.py")) == sorted(assignment.files)
    else:
        assert ref.is_file()


def test_the_course_has_the_known_assignments():
    assert {"perceptron", "recursion"} <= set(REAL.names())


def test_valid_spec_loads(tmp_path):
    a = load_assignment(write_spec(tmp_path, VALID))
    assert a.name == "demo"
    assert a.api == "tf1"
    assert a.seed == 1
    assert a.grading_seed == 12345
    assert a.task is not None and a.task.generator.name == "halfplane"
    assert [c.name for c in a.checks] == ["decision_boundary(minimum=0.9)", "wiring"]
    assert [c.visibility for c in a.checks] == ["visible", "hidden"]
    assert a.points == 5.0


def test_unknown_top_level_key(tmp_path):
    spec_error(tmp_path, 'colour = "red"\n' + VALID, "unknown top-level key 'colour'")


def test_unknown_check_name(tmp_path):
    spec_error(
        tmp_path,
        edit('check = "wiring"', 'check = "wirring"'),
        "[[checks]] #2",
        "unknown check 'wirring'",
    )


def test_unknown_check_parameter(tmp_path):
    spec_error(
        tmp_path,
        edit("params = { minimum = 0.9 }", "params = { minimum = 0.9, maximum = 1.0 }"),
        "[[checks]] #1 (decision_boundary)",
        "unknown parameter 'maximum'",
    )


def test_missing_required_parameter(tmp_path):
    spec_error(
        tmp_path,
        edit("params = { minimum = 0.9 }\n", ""),
        "[[checks]] #1 (decision_boundary)",
        "missing parameter 'minimum'",
    )


def test_bad_visibility(tmp_path):
    spec_error(
        tmp_path,
        edit('visibility = "hidden"', 'visibility = "secret"'),
        "[[checks]] #2",
        "visibility 'secret'",
    )


def test_duplicate_check_names(tmp_path):
    spec_error(
        tmp_path,
        edit('name = "wiring"', 'name = "decision_boundary(minimum=0.9)"'),
        "[[checks]] #2",
        "duplicate check name 'decision_boundary(minimum=0.9)'",
    )


def test_duplicate_explicit_check_names(tmp_path):
    text = VALID + '\n[[checks]]\nname = "wiring"\ncheck = "loss_function"\npoints = 1\n'
    spec_error(tmp_path, text, "[[checks]] #3", "duplicate check name 'wiring'")


def test_unknown_collect_key(tmp_path):
    spec_error(
        tmp_path,
        edit('params = ["weights"]', 'params = ["weights"]\nimages = ["a"]'),
        "unknown key [collect].images",
    )


@pytest.mark.parametrize(
    "new, fragments",
    [
        ('params = "weights"', ["[collect].params must be an array"]),
        ("params = [3]", ["[collect].params[0] must be a variable name"]),
        ('fetches = [{ name = "pred" }]', ["[collect].fetches[0]: missing ['feeds']"]),
        (
            'calls = [{ id = "a", function = "f", args = [], retries = 2 }]',
            ["[collect].calls[0]: unknown ['retries']"],
        ),
    ],
)
def test_malformed_collect_entries(tmp_path, new, fragments):
    spec_error(tmp_path, edit('params = ["weights"]', new), *fragments)


def test_unknown_task_key(tmp_path):
    spec_error(
        tmp_path,
        edit('input = "bias_column"', 'input = "bias_column"\noptimizer = "adam"'),
        "unknown key [task].optimizer",
    )


def test_unknown_generator(tmp_path):
    spec_error(
        tmp_path,
        edit('generator = "halfplane"', 'generator = "spiral"'),
        "[task].generator",
        "'spiral'",
    )


def test_unknown_activation(tmp_path):
    spec_error(
        tmp_path,
        edit('activation = "sigmoid"', 'activation = "softplus"'),
        "[task].layers[0].activation",
        "'softplus'",
    )


def test_unknown_key_in_a_check(tmp_path):
    spec_error(tmp_path, edit("points = 3", "points = 3\nweight = 2"), "[[checks]] #1", "'weight'")


def test_unknown_run_key(tmp_path):
    spec_error(tmp_path, edit("seed = 1", "seed = 1\nseeds = 2"), "[run].seeds")


def test_unknown_limits_key(tmp_path):
    spec_error(tmp_path, edit("[run]", "[limits]\ntimeout = 3\n\n[run]"), "[limits]", "'timeout'")


def test_check_needing_a_task_without_one(tmp_path):
    text = edit('[task]\ngenerator = "halfplane"\ninput = "bias_column"\n', "")
    text = text.replace('layers = [{ weight = "weights.output", activation = "sigmoid" }]\n', "")
    spec_error(tmp_path, text, "[[checks]] #1", "needs a [task] table")


def test_bad_api_and_missing_title(tmp_path):
    spec_error(tmp_path, edit('api = "tf1"', 'api = "tf2"'), "api = 'tf2'")
    spec_error(tmp_path, edit('title = "Demo"\n', ""), "'title' is required")


def test_negative_points_and_no_checks(tmp_path):
    spec_error(tmp_path, edit("points = 3", "points = -1"), "[[checks]] #1", "'points'")
    no_checks = VALID.split("[[checks]]")[0]
    spec_error(tmp_path, no_checks, "no [[checks]]")


def test_invalid_toml(tmp_path):
    spec_error(tmp_path, VALID + "\nthis is not toml\n", "not valid TOML")


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match=r"no spec at .*nothing.*assignment\.toml"):
        load_assignment(tmp_path / "nothing" / "assignment.toml")


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('[collect]\nparams = ["weights"]\n', "", "collect"),
        ("[run]\nseed = 1\n", "", "run"),
        ("params = { minimum = 0.9 }", "params = 3", "params"),
    ],
    ids=["collect", "run", "params"],
)
def test_a_table_of_the_wrong_type(tmp_path, old, new, key):
    # `collect = 3` instead of a [collect] table: still a SpecError naming file and key.
    text = edit(old, new)
    if key != "params":
        text = f"{key} = 3\n" + text
    spec_error(tmp_path, text, key)


# --- default check names -------------------------------------------------------------------------


def test_default_name_lists_scalar_parameters(tmp_path):
    text = VALID + (
        '\n[[checks]]\ncheck = "loss_decrease"\npoints = 1\nparams = { max_ratio = 0.5, n = 100 }\n'
        '\n[[checks]]\ncheck = "shapes"\npoints = 1\n'
        'params = { dims = { n = 3 }, placeholders = { x = ["batch", "n"] } }\n'
        '\n[[checks]]\ncheck = "call_count"\npoints = 1\nparams = { function = "mfib" }\n'
    )
    a = load_assignment(write_spec(tmp_path, text))
    assert [c.name for c in a.checks] == [
        "decision_boundary(minimum=0.9)",
        "wiring",
        "loss_decrease(max_ratio=0.5, n=100)",
        "shapes",
        "call_count(function=mfib)",
    ]


# --- drawn calls ---------------------------------------------------------------------------------

DRAWN = """
[[drawn_calls]]
id = "fwd"
function = "forward"
dims = { k = [2, 4], j = [3, 3] }
args = [{ uniform = [-1.0, 1.0], shape = ["k", "j"] }, { uniform = [0.0, 1.0], shape = ["j"] }, 7]
setup = "memo = np.zeros({2})"

[[drawn_calls]]
id = "fac"
function = "fac"
args = [{ int = [3, 20] }]
"""


def test_drawn_calls_load_and_draw(tmp_path):
    from grader.course import draws

    spec = load_assignment(write_spec(tmp_path, VALID + DRAWN))
    assert [d.id for d in spec.drawn_calls] == ["fwd", "fac"]
    rng = np.random.default_rng(0)
    first = draws.draw(spec.drawn_calls, rng)
    fwd, fac = first
    w, i, seven = fwd.args
    assert len(w) in (2, 3, 4) and len(w[0]) == 3 and len(i) == 3 and seven == 7
    assert all(-1 <= v <= 1 for row in w for v in row) and all(0 <= v <= 1 for v in i)
    assert fwd.setup == "memo = np.zeros(7)"
    assert isinstance(fac.args[0], int) and 3 <= fac.args[0] <= 20
    # Drawn afresh: two secret generators do not give the same arguments.
    a, b = (draws.draw(spec.drawn_calls, draws.fresh_rng())[0].args[0] for _ in range(2))
    assert a != b


@pytest.mark.parametrize(
    "entry, fragments",
    [
        ('id = "a"\nfunction = "f"', ["[[drawn_calls]] #1: 'args' is required"]),
        ('id = "a"\nfunction = "f"\nargs = [{ int = [5, 1] }]', ["args[0]: int = [lo, hi]"]),
        (
            'id = "a"\nfunction = "f"\nargs = [{ uniform = [0, 1], shape = ["n"] }]',
            ["args[0]: shape entries are positive sizes or names of dims"],
        ),
        (
            'id = "a"\nfunction = "f"\nargs = [{ normal = [0, 1] }]',
            ["args[0]: a literal, { int = [lo, hi] }"],
        ),
        ('id = "a"\nfunction = "f"\nargs = []\nretries = 2', ["unknown ['retries']"]),
        (
            'id = "a"\nfunction = "f"\nargs = [{ uniform = [0, 1], shape = [1000, 1000] }]',
            ["arrays of at most"],
        ),
    ],
)
def test_malformed_drawn_calls(tmp_path, entry, fragments):
    spec_error(tmp_path, VALID + "\n[[drawn_calls]]\n" + entry + "\n", *fragments)


def test_a_drawn_values_check_names_known_calls(tmp_path):
    text = VALID + DRAWN + '\n[[checks]]\ncheck = "drawn_values"\npoints = 1\n'
    text += 'params = { calls = ["fac", "fib"] }\n'
    spec_error(tmp_path, text, "no [[drawn_calls]] with id ['fib']")


# --- the rule: a network that was never trained scores at most 40% ------------------------------


def test_structural_points_above_the_rule_are_refused(tmp_path):
    # wiring 3 of 6 points: a never-trained network would score 50%
    text = edit('points = 2\nvisibility = "hidden"', 'points = 3\nvisibility = "hidden"')
    spec_error(tmp_path, text, "wiring (3)", "carry 3 of 6 points", "at most 40%")


def test_the_spec_may_state_its_own_share(tmp_path):
    text = edit('points = 2\nvisibility = "hidden"', 'points = 3\nvisibility = "hidden"')
    text = text.replace('api = "tf1"\n', 'api = "tf1"\nuntrained_max = 0.5\n')
    assert load_assignment(write_spec(tmp_path, text)).points == 6
    spec_error(tmp_path, text.replace("0.5", '"half"'), "untrained_max must be a number")


@pytest.mark.parametrize("name", [n for n in REAL.names() if REAL.assignment(n).task])
def test_every_spec_with_a_network_states_the_rule(name):
    from grader import registry

    spec = REAL.assignment(name)
    text = spec.path.read_text(encoding="utf-8")
    assert re.search(r"^untrained_max = 0\.4$", text, re.M), name
    structural = sum(
        c.points for c in spec.checks if getattr(registry.get(c.check), "structural", False)
    )
    assert structural <= 0.4 * spec.points + 1e-9, (name, structural, spec.points)
