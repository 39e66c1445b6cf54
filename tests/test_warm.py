"""The warm runner: jobs forked from a worker that imported TensorFlow once, each walled off.

The walls of a warm job are tested like a cold job's (tests/test_attacks.py runs its attacks on
both runners); here: nothing of one job is visible to the next one forked from the same worker
(files, processes, memory, ipc, environment, modules), as root and as an ordinary user; the
worker's own set-up refuses what it would have to trust; results name the runner; the job
filter refuses mount and namespace calls.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import textwrap

import pytest

from grader.run import seccomp
from tests.conftest import ROOT
from tests.test_attacks import Class, mode  # noqa: F401 - the fixture, root and user

pytestmark = pytest.mark.slow

PERCEPTRON = (ROOT / "reference" / "perceptron.py").read_text(encoding="utf-8")

# Job 1 leaves TOKEN everywhere it can; job 2, forked next from the same worker, looks for it
# everywhere it can and prints what it finds. The test (which knows TOKEN) reads job 2's log.
LEAVE = """
import ctypes, os, subprocess, sys, time
import numpy, tensorflow as tf
TOKEN = "{token}"
wrote = []
for place in ("/tmp", "/var/tmp", "/dev/shm", "/job/work", os.path.expanduser("~"), os.getcwd(),
              "/", "/job", "/job/in", "/usr", "/etc", "/proc/self"):
    try:
        with open(os.path.join(place, "leak.txt"), "w") as fh:
            fh.write(TOKEN)
        wrote.append(place)
    except OSError:
        pass
print("WROTE", wrote)
os.environ["LEAK"] = TOKEN
numpy.leak = tf.leak = TOKEN
keep = bytearray(("LEAKMARK-" + TOKEN).encode() * 200000)  # ~8 MB of it in this job's memory
libc = ctypes.CDLL(None, use_errno=True)
queue = libc.msgget(0x1eaf, 0o1666)  # IPC_CREAT | 0666: a SysV message queue with the token
if queue >= 0:
    class Msg(ctypes.Structure):
        _fields_ = [("type", ctypes.c_long), ("text", ctypes.c_char * 64)]
    libc.msgsnd(queue, ctypes.byref(Msg(1, TOKEN.encode())), 64, 0)
    print("QUEUE", queue)
# A process that outlives the job if it can: detached, its own session, the token in its argv.
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(40)", "LEAKMARK-" + TOKEN],
                 start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
print("LEFT")
"""

LOOK = """
import ctypes, os, re, sys
import numpy, tensorflow as tf
found = []
prefix = "LEAK" + "MARK-"
for top in ("/tmp", "/var/tmp", "/dev/shm", "/job", os.path.expanduser("~"), "/"):
    for folder, dirs, files in os.walk(top):
        if folder.startswith(("/proc", "/sys", "/usr", "/dev/fd")):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(folder, name)
            if name == "leak.txt":
                try:
                    found.append(("file", path, open(path).read()))
                except OSError as exc:
                    found.append(("file", path, str(exc)))
        if top == "/":
            dirs[:] = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            env = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if prefix in cmd or "LEAK=" in env:
            found.append(("process", pid, cmd + " " + env))
found += [("environ", os.environ.get("LEAK")), ("numpy", getattr(numpy, "leak", None)),
          ("tensorflow", getattr(tf, "leak", None))]
libc = ctypes.CDLL(None, use_errno=True)
queue = libc.msgget(0x1eaf, 0)
if queue >= 0:
    class Msg(ctypes.Structure):
        _fields_ = [("type", ctypes.c_long), ("text", ctypes.c_char * 64)]
    msg = Msg()
    got = libc.msgrcv(queue, ctypes.byref(msg), 64, 0, 0o4000)  # IPC_NOWAIT
    found.append(("queue", queue, msg.text if got > 0 else None))
# Every readable private mapping of this process: job 1's memory, were it here, would show.
pattern = re.compile(prefix.encode() + rb"([0-9a-f]{32})")
scanned = 0
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
    for line in maps:
        fields = line.split()
        if not fields[1].startswith("r") or len(fields) > 5 and fields[5].startswith("["+"v"):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if end - start > 1 << 30:
            continue
        try:
            mem.seek(start)
            chunk = mem.read(end - start)
        except (OSError, ValueError, OverflowError):
            continue
        scanned += len(chunk)
        found += [("memory", m.group(1).decode()) for m in pattern.finditer(chunk)]
print("SCANNED", scanned)
for item in found:
    print("FOUND", item)
print("LOOKED")
"""


def test_a_job_leaves_nothing_for_the_next_one(mode):  # noqa: F811 - the fixture
    token = secrets.token_hex(16)
    klass = Class(mode)
    try:
        klass.student("honest", PERCEPTRON, "perceptron.py")
        klass.student("job1_leaves", LEAVE.format(token=token), "perceptron.py")
        klass.student("job2_looks", LOOK, "perceptron.py")
        # One worker, the students in order: job 2 is forked right after job 1, from the same one.
        done = klass.grade("--jobs", "1", "--runner", "warm", assignment="perceptron")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert klass.result("honest", "perceptron")["score"] == 10.0
        for student in ("honest", "job1_leaves", "job2_looks"):
            isolation = klass.result(student, "perceptron")["extra_data"]["isolation"]
            assert any(line.startswith("runner: warm") for line in isolation), isolation
        left = klass.result("job1_leaves", "perceptron")["extra_data"]["log"]
        assert "LEFT" in left and "QUEUE" in left, left  # job 1 did leave its marks
        wrote = re.search(r"WROTE (\[.*\])", left)
        assert wrote is not None
        assert set(eval(wrote.group(1))) <= {"/tmp", "/var/tmp", "/dev/shm", "/job/work"}, left
        looked = klass.result("job2_looks", "perceptron")["extra_data"]["log"]
        assert "LOOKED" in looked, looked
        scanned = int(re.search(r"SCANNED (\d+)", looked).group(1))
        assert scanned > 100 << 20, looked  # it did read its memory (TensorFlow's included)
        assert token not in looked, looked
        found = [ln for ln in looked.splitlines() if ln.startswith("FOUND")]
        assert found == [
            "FOUND ('environ', None)",
            "FOUND ('numpy', None)",
            "FOUND ('tensorflow', None)",
        ], looked
        assert token not in json.dumps(klass.result("job2_looks", "perceptron"))
        assert not _host_processes_with(token)  # and nothing of job 1 outlived it
    finally:
        klass.close()


def _host_processes_with(token: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if token.encode() in fh.read():
                        out.append(int(entry))
            except OSError:
                continue
    return out


ESCAPE = """
import ctypes, os, tensorflow as tf
libc = ctypes.CDLL(None, use_errno=True)
def tried(name, result):
    print(name, result, ctypes.get_errno())
tried("unshare_user", libc.unshare(0x10000000))
tried("unshare_ns", libc.unshare(0x00020000))
tried("umount_tmp", libc.umount2(b"/tmp", 2))
tried("mount_tmpfs", libc.mount(b"t", b"/job/work", b"tmpfs", 0, None))
tried("remount_in_rw", libc.mount(None, b"/job/in", None, 32 | 4096, None))
tried("setns", libc.setns(0, 0))
tried("clone_newuser", libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
tried("chroot", libc.chroot(b"/tmp"))
with open("/proc/self/status") as fh:
    print([ln.strip() for ln in fh if ln.startswith(("CapEff", "CapBnd", "NoNewPrivs", "Seccomp"))])
print("uid", os.getuid(), "pid", os.getpid(), "ppid", os.getppid())
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print("forked fine")
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="skipped: syscall numbers for x86_64")
def test_a_warm_job_cannot_undo_its_walls(mode):  # noqa: F811 - the fixture
    klass = Class(mode)
    try:
        klass.student("honest", PERCEPTRON, "perceptron.py")
        klass.student("escapes", ESCAPE, "perceptron.py")
        done = klass.grade("--jobs", "1", "--runner", "warm", assignment="perceptron")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        log = klass.result("escapes", "perceptron")["extra_data"]["log"]
        for call in (
            "unshare_user",
            "unshare_ns",
            "umount_tmp",
            "mount_tmpfs",
            "remount_in_rw",
            "setns",
            "clone_newuser",
            "chroot",
        ):
            assert re.search(rf"^{call} -1 1$", log, re.M), (call, log)  # EPERM, each
        assert "CapEff:\\t0000000000000000" in log and "CapBnd:\\t0000000000000000" in log, log
        assert "NoNewPrivs:\\t1" in log and "Seccomp:\\t2" in log, log
        assert re.search(r"^uid 1000 pid 2 ppid 1$", log, re.M), log  # its own pid namespace
        assert "forked fine" in log, log  # clone without namespace flags works
        assert klass.result("honest", "perceptron")["score"] == 10.0
    finally:
        klass.close()


def test_the_job_filter_refuses_namespace_calls_and_allows_plain_clone():
    """The filter's own logic, run by a throwaway process (no sandbox needed)."""
    program = seccomp.job_program()
    if program is None:
        pytest.skip("skipped: no filter for this architecture")
    code = textwrap.dedent(
        f"""
        import ctypes, os, threading
        from grader.sandbox.zygote import _seccomp, _libc, PR_SET_NO_NEW_PRIVS
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _seccomp(bytes.fromhex("{program.hex()}"))
        print("unshare", _libc.unshare(0x10000000), ctypes.get_errno())
        print("mount", _libc.mount(b"t", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno())
        t = threading.Thread(target=lambda: None); t.start(); t.join()
        pid = os.fork()
        if pid == 0:
            os._exit(3)
        print("child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "unshare -1 1" in done.stdout and "mount -1 1" in done.stdout, done.stdout
    assert "child 3" in done.stdout, done.stdout  # threads and fork still work


def test_results_name_the_runner_and_a_class_runs_warm(tmp_path):
    klass = tmp_path / "class"
    for student in ("ann", "ben"):
        (klass / student).mkdir(parents=True)
        (klass / student / "perceptron.py").write_text(PERCEPTRON, encoding="utf-8")
    (klass / "ann" / "recursion.py").write_text(
        (ROOT / "reference" / "recursion.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "grader", "grade", str(klass), "-a", "perceptron"]
    done = subprocess.run(
        [*command, "--out", str(out), "--jobs", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for student in ("ann", "ben"):
        result = json.loads((out / student / "perceptron" / "results.json").read_text())
        assert result["score"] == 10.0
        runner = [ln for ln in result["extra_data"]["isolation"] if ln.startswith("runner:")]
        assert len(runner) == 1 and runner[0].startswith("runner: warm"), runner
        timing = result["extra_data"]["timing"]
        assert timing["import_s"] < 1.0, timing  # TensorFlow was already imported
        assert 0 < timing["private_mb"] < timing["peak_rss_mb"], timing
    cold = subprocess.run(
        [*command, "--out", str(tmp_path / "cold"), "--jobs", "1", "--runner", "cold", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert cold.returncode == 0, cold.stderr[-3000:]
    result = json.loads((tmp_path / "cold" / "ann" / "perceptron" / "results.json").read_text())
    runner = [ln for ln in result["extra_data"]["isolation"] if ln.startswith("runner:")]
    assert runner == ["runner: cold (a fresh interpreter per job), pinned to one CPU"], runner
