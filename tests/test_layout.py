"""The package's layout, read from its source: who may import whom.

Every module under `grader/` is parsed with `ast`; every import in it (at module level or inside
a function, `import x` or `from x import y`, relative imports resolved) is an edge of the import
graph. The rules (DESIGN.md, "One-way data flow, one trust boundary"):

- trusted code never imports `grader.sandbox` (it talks to the child only through `grader.wire`);
- `grader.sandbox` imports nothing of the grader but itself and `grader.wire`;
- `grader.wire`, the contract both sides import, is standard library only;
- the trusted process never imports TensorFlow (or Keras);
- no stage imports a later one: the floors below, lowest first.

Each rule is also fed a small fake package with the forbidden import, so it is known to fail.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = "grader"
SANDBOX = "grader.sandbox"
WIRE = "grader.wire"
FRAMEWORKS = ("tensorflow", "keras", "tf_keras")  # never in the trusted process

# The stages, lowest first: a module may import its own floor and the ones below, never above.
# Keyed by the first component under `grader` (`grader.checks.base` -> "checks"); `__init__` is
# the package itself. The sandbox is not a floor: it stands beside the building, joined to it
# only by `wire`.
FLOORS: dict[str, int] = {
    "errors": 0,
    "wire": 0,
    "registry": 0,
    "results": 0,
    "model": 1,
    "course": 2,
    "run": 3,
    "checks": 4,
    "report": 5,
    "pipeline": 6,
    "context": 7,
    "references": 7,
    "authoring": 8,
    "integrations": 8,
    "cli": 9,
    "__main__": 9,
    "__init__": 9,
}


@dataclass(frozen=True)
class Import:
    """One import statement's edge: `module` (in `path`, at `line`) imports `target`."""

    module: str
    path: str
    line: int
    target: str

    @property
    def at(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Graph:
    """The package's modules (name -> path) and the import edges between them and beyond."""

    paths: dict[str, str]
    edges: tuple[Import, ...]


# --- reading the package -----------------------------------------------------------------------


def read_package(root: Path = ROOT) -> dict[str, str]:
    """Every module of the package: its path relative to `root` (`grader/run/runner.py`) -> source."""
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((root / PACKAGE).rglob("*.py"))
    }


def module_name(path: str) -> str:
    """`grader/run/runner.py` -> `grader.run.runner`; `grader/run/__init__.py` -> `grader.run`."""
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph(sources: dict[str, str]) -> Graph:
    """The import graph of the package whose modules are `sources` (path -> source)."""
    paths = {module_name(p): p for p in sources}
    known = set(paths)
    edges = []
    for path, source in sources.items():
        module = module_name(path)
        package = module if path.endswith("/__init__.py") else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(source, filename=path)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, package)
                # `from grader import registry` imports the module grader.registry;
                # `from grader.checks import check` imports the package grader.checks.
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
                ]
            else:
                continue
            edges += [Import(module, path, node.lineno, t) for t in dict.fromkeys(targets)]
    return Graph(paths, tuple(edges))


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """The module a `from ... import` names, with a relative one resolved against `package`."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*base, *([node.module] if node.module else [])])


# --- the rules ---------------------------------------------------------------------------------


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def side(module: str) -> str:
    """`sandbox` (the untrusted child), `wire` (the contract) or `trusted` (the rest)."""
    if _within(module, SANDBOX):
        return "sandbox"
    return "wire" if module == WIRE else "trusted"


def floor(module: str) -> int | None:
    """The floor of a grader module (None for the sandbox, or a stage FLOORS does not know)."""
    if side(module) == "sandbox":
        return None
    parts = module.split(".")
    return FLOORS.get(parts[1] if len(parts) > 1 else "__init__")


def trusted_imports_sandbox(g: Graph) -> list[str]:
    return [
        f"{e.at}: trusted {e.module} imports {e.target} (the untrusted side); "
        f"the trusted side reaches the child only through {WIRE}"
        for e in g.edges
        if side(e.module) != "sandbox" and _within(e.target, SANDBOX)
    ]


def sandbox_imports_trusted(g: Graph) -> list[str]:
    return [
        f"{e.at}: sandbox module {e.module} imports {e.target}; "
        f"the child imports nothing of the grader but {SANDBOX}.* and {WIRE}"
        for e in g.edges
        if side(e.module) == "sandbox"
        and _within(e.target, PACKAGE)
        and not _within(e.target, SANDBOX)
        and e.target != WIRE
    ]


def wire_imports_beyond_stdlib(g: Graph) -> list[str]:
    return [
        f"{e.at}: {WIRE} imports {e.target}, which is not in the standard library; "
        f"the contract both sides import stays stdlib only"
        for e in g.edges
        if e.module == WIRE and e.target.split(".")[0] not in sys.stdlib_module_names
    ]


def trusted_imports_tensorflow(g: Graph) -> list[str]:
    return [
        f"{e.at}: trusted {e.module} imports {e.target}; "
        f"the trusted process never imports TensorFlow (only the sandboxed child does)"
        for e in g.edges
        if side(e.module) != "sandbox" and e.target.split(".")[0] in FRAMEWORKS
    ]


def upward_imports(g: Graph) -> list[str]:
    """Imports of a later stage (a higher floor), and modules on no floor, with the picture."""
    faults = [
        f"{path}: {module} is on no floor; add its stage to FLOORS in tests/test_layout.py"
        for module, path in g.paths.items()
        if side(module) != "sandbox" and floor(module) is None
    ]
    for e in g.edges:
        if side(e.module) == "sandbox" or not _within(e.target, PACKAGE):
            continue
        mine, theirs = floor(e.module), floor(e.target)
        if mine is not None and theirs is not None and theirs > mine:
            faults.append(
                f"{e.at}: {e.module} (floor {mine}) imports {e.target} (floor {theirs}), "
                f"a later stage"
            )
    return faults + ["", picture()] if faults else []


def picture() -> str:
    """The floors, top down, as the failure message draws them."""
    rows = {}
    for stage, level in FLOORS.items():
        rows.setdefault(level, []).append(stage)
    lines = ["the floors (a module imports its own floor and the ones below):"]
    lines += [f"  {level}  {', '.join(rows[level])}" for level in sorted(rows, reverse=True)]
    lines.append(f"  beside them: sandbox (imports only itself and {WIRE.split('.')[1]})")
    return "\n".join(lines)


RULES: dict[str, Callable[[Graph], list[str]]] = {
    "trusted never imports the sandbox": trusted_imports_sandbox,
    "the sandbox imports only itself and wire": sandbox_imports_trusted,
    "wire is standard library only": wire_imports_beyond_stdlib,
    "the trusted process never imports TensorFlow": trusted_imports_tensorflow,
    "no stage imports a later one": upward_imports,
}


# --- the package as it is ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> Graph:
    return graph(read_package())


@pytest.mark.parametrize("rule", list(RULES), ids=list(RULES))
def test_the_package_keeps_the_rule(package, rule):
    faults = RULES[rule](package)
    assert not faults, f"{rule}:\n" + "\n".join(faults)


def test_the_reader_sees_the_imports_it_must(package):
    """A reader that found nothing would pass every rule: it must see these (the first two are
    inside functions, the last is written `from grader import registry`)."""
    pairs = {(e.module, e.target) for e in package.edges}
    assert ("grader.cli", "grader.context") in pairs
    assert ("grader.sandbox.child", "grader.sandbox.legacy") in pairs
    assert ("grader.sandbox.child", "grader.wire") in pairs
    assert ("grader.course.spec", "grader.registry") in pairs
    assert len(package.paths) >= 40 and len(package.edges) >= 200


# The child imports only what it needs: the process that runs student code never loads trusted code.
CHILD_IMPORTS = (
    "import json, sys\n"
    "import grader.sandbox.child\n"
    "print(json.dumps(sorted(m for m in sys.modules if m == 'grader' or m.startswith('grader.'))))\n"
)


def trusted_loaded(names: Iterable[str]) -> list[str]:
    """The loaded grader modules that are neither the sandbox, the contract, nor the package."""
    return sorted(n for n in names if n != PACKAGE and side(n) == "trusted")


def test_the_child_loads_no_trusted_module(tmp_path):
    out = subprocess.run(
        [sys.executable, "-I", "-c", CHILD_IMPORTS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "grader.sandbox.child" in loaded and WIRE in loaded
    assert trusted_loaded(loaded) == [], "the sandboxed child loaded trusted modules"


# --- every rule can fail -----------------------------------------------------------------------


def faults_in(rule: str, **changed: str) -> list[str]:
    """The rule's faults in the real package's module list with these sources (every other
    module empty); a keyword is a path with `/` written `__` (`grader__run__runner`, and
    `grader__init` for `grader/__init__.py`)."""
    sources = dict.fromkeys(read_package(), "")
    for key, source in changed.items():
        path = key.replace("__", "/") + ".py"
        sources[path.replace("/init.py", "/__init__.py")] = source
    return RULES[rule](graph(sources))


@pytest.mark.parametrize(
    "module, source, fault",
    [
        (
            "grader__checks__base",
            "import numpy\n\ndef f():\n    from grader.sandbox.child import main\n",
            "grader/checks/base.py:4: trusted grader.checks.base imports grader.sandbox.child",
        ),
        (
            "grader__run__runner",
            "from ..sandbox import collect\n",
            "grader/run/runner.py:1: trusted grader.run.runner imports grader.sandbox.collect",
        ),
        (
            "grader__pipeline",
            "from grader import sandbox\n",
            "grader/pipeline.py:1: trusted grader.pipeline imports grader.sandbox ",
        ),
        ("grader__wire", "import grader.sandbox\n", "grader/wire.py:1: trusted grader.wire"),
    ],
)
def test_trusted_importing_the_sandbox_is_caught(module, source, fault):
    faults = faults_in("trusted never imports the sandbox", **{module: source})
    assert len(faults) == 1 and faults[0].startswith(fault), faults


@pytest.mark.parametrize(
    "source, fault",
    [
        ("from grader.checks import Evidence\n", "child.py:1: sandbox module grader.sandbox.child"),
        ("def f():\n    from .. import registry\n", "child.py:2: sandbox module"),
        ("import grader\n", "child.py:1: sandbox module grader.sandbox.child imports grader;"),
    ],
)
def test_the_sandbox_importing_trusted_code_is_caught(source, fault):
    faults = faults_in("the sandbox imports only itself and wire", grader__sandbox__child=source)
    assert len(faults) == 1 and fault in faults[0], faults


def test_the_sandbox_may_import_itself_and_wire():
    source = "from grader.wire import JobSpec\nfrom . import collect\nfrom .isolation import x\n"
    assert (
        faults_in("the sandbox imports only itself and wire", grader__sandbox__child=source) == []
    )


@pytest.mark.parametrize(
    "source, target",
    [("import numpy as np\n", "numpy"), ("from grader import errors\n", "grader.errors")],
)
def test_wire_beyond_the_standard_library_is_caught(source, target):
    faults = faults_in("wire is standard library only", grader__wire=source)
    assert faults == [
        f"grader/wire.py:1: grader.wire imports {target}, which is not in the standard library; "
        "the contract both sides import stays stdlib only"
    ]
    ok = "from __future__ import annotations\nimport json\nfrom dataclasses import field\n"
    assert faults_in("wire is standard library only", grader__wire=ok) == []


@pytest.mark.parametrize(
    "module, source, line",
    [
        ("grader__model__keras", "def forward():\n    import tensorflow as tf\n", 2),
        ("grader__report__figures", "from keras import layers\n", 1),
        ("grader__init", "import tensorflow.compat.v1\n", 1),
    ],
)
def test_trusted_importing_tensorflow_is_caught(module, source, line):
    faults = faults_in("the trusted process never imports TensorFlow", **{module: source})
    assert len(faults) == 1 and f".py:{line}: trusted grader" in faults[0], faults


def test_the_sandbox_may_import_tensorflow():
    source = "import tensorflow as tf\n"
    rule = "the trusted process never imports TensorFlow"
    assert faults_in(rule, grader__sandbox__tfcompat=source) == []


@pytest.mark.parametrize(
    "module, source, fault",
    [
        (
            "grader__course__spec",
            "from grader.run.runner import Job\n",
            "grader/course/spec.py:1: grader.course.spec (floor 2) imports grader.run.runner "
            "(floor 3), a later stage",
        ),
        (
            "grader__model__keras",
            "def f():\n    from ..checks import check\n",
            "grader/model/keras.py:2: grader.model.keras (floor 1) imports grader.checks (floor 4)",
        ),
        (
            "grader__registry",
            "from grader import check_file\n",
            "grader/registry.py:1: grader.registry (floor 0) imports grader (floor 9)",
        ),
        ("grader__stage", "", "grader/stage.py: grader.stage is on no floor"),
    ],
)
def test_a_later_stage_imported_is_caught_with_the_picture(module, source, fault):
    faults = faults_in("no stage imports a later one", **{module: source})
    assert faults[0].startswith(fault), faults
    assert faults[-1] == picture() and "  4  checks" in picture()


def test_the_same_floor_and_lower_floors_are_allowed():
    source = "from grader.course.data import FAMILIES\nfrom grader.checks.base import Verdict\n"
    assert faults_in("no stage imports a later one", grader__checks__graph=source) == []


def test_a_trusted_module_loaded_in_the_child_is_caught():
    loaded = ["grader", "grader.wire", "grader.sandbox", "grader.sandbox.child", "grader.results"]
    assert trusted_loaded(loaded) == ["grader.results"]
