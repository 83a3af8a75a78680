#!/usr/bin/python3
"""
tests/e2e/runner.py - runs the end-to-end tests.

  /usr/bin/python3 tests/e2e/runner.py [--results FILE] [SELECTOR...]

SELECTOR: a module (`test_basic`, `test_basic.py`) or one test
(`test_basic.test_insert` / `test_basic::test_insert`); none = all of
tests/e2e/test_*.py. Each module runs in its own child process with a hard
timeout (SW_E2E_MODULE_TIMEOUT, default 300 s, or the module's own
`MODULE_TIMEOUT = N`), all of them together SW_E2E_TOTAL_TIMEOUT (default
1500 s). SW_E2E_JOBS modules (default 2) run side by side, each printed
whole when it ends: most of a module's time is spent waiting for servers
and timers, not on a core. A module with `RUN_ALONE = True` at its top level
runs with no other (it loads the machine itself or its timings would
suffer); those run first. Each test has a soft timeout
(SW_E2E_TEST_TIMEOUT, default 120 s) that fails it with a traceback.
Module-level setup_module()/teardown_module() run once around the module's
test_* functions (in file order). A failed assert or any exception fails the
test; a failing setup_module fails every test of the module; a failing
teardown_module counts as a failed test of its own; a setup_module raising
cluster.Skip (a machine that cannot create a network namespace) reports
`SKIP name: reason` for each test, counted apart. After each module every
process it started is killed, even if the child was SIGKILLed (pid file).

Prints `PASS name (1.2s)` / `FAIL name` per test, and at the end
`e2e: N passed, M failed`; --results FILE gets
{"passed": N, "failed": M, "failures": [names]}. Exit status 1 if M > 0 or
nothing ran.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


class TestTimeout(Exception):
    pass


def discover():
    """tests/e2e/test_*.py; with SW_E2E_LONG=1 the slow long_*.py instead
    (`tests/run long`)."""
    prefix = "long_" if os.environ.get("SW_E2E_LONG") == "1" else "test_"
    return sorted(f[:-3] for f in os.listdir(HERE)
                  if f.startswith(prefix) and f.endswith(".py"))


def test_names(path):
    """test_* functions of a module in definition order, without importing
    it (the parent must not start anything)."""
    import ast
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return [n.name for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")]


def parse_selectors(args):
    """{module: None (all) or [test names]}, in order."""
    mods = discover()
    sel = {}
    for a in args:
        a = a.replace("::", ".")
        if a.endswith(".py"):
            a = a[:-3]
        a = os.path.basename(a)
        mod, _, test = a.partition(".")
        if mod not in mods:
            raise SystemExit("runner: no module tests/e2e/%s.py (have: %s)" % (mod, " ".join(mods)))
        if test:
            if sel.get(mod, []) is not None:
                sel.setdefault(mod, []).append(test)
        else:
            sel[mod] = None
    return sel or {m: None for m in mods}


# ---------------------------------------------------------------- the child

def print_logs():
    """Router logs (last 40 lines) of every component still in use; for
    the others, their [ERROR] lines, or their last lines if they died."""
    try:
        import cluster
    except Exception:
        return
    comps = [c for c in cluster._components if not getattr(c, "stopped", False)]
    comps.sort(key=lambda c: 0 if isinstance(c, cluster.Router) else 1)
    for comp in comps:
        try:
            label, path = comp.label(), comp.log_path
            if isinstance(comp, cluster.Router):
                if comp.alive():
                    text, what = cluster.tail(path, 40), "last 40 lines"
                else:
                    rc = comp.proc.popen.returncode if comp.proc else None
                    text, what = cluster.tail(path, 80), \
                        "NOT RUNNING, exit status %s; last 80 lines" % rc
            elif comp.alive():
                text = "\n".join(l for l in cluster.tail(path, 300).splitlines()
                                 if "[ERROR]" in l or " ERROR " in l)
                what = "alive; its errors"
                if not text:
                    continue
            else:
                text, what = cluster.tail(path, 20), "NOT RUNNING; last 20 lines"
        except Exception as e:
            print("    (log of %r unavailable: %s)" % (comp, e))
            continue
        print("    ---- %s: %s (%s) ----" % (label, path, what))
        for line in text.splitlines():
            print("    | " + line)


def report_fail(name, exc_text, results, seconds=None, logs=True):
    print("FAIL %s%s" % (name, "" if seconds is None else " (%.1fs)" % seconds))
    for line in exc_text.rstrip().splitlines():
        print("    " + line)
    if logs:
        print_logs()
    results["failed"] += 1
    results["failures"].append(name)
    sys.stdout.flush()


def run_module(mod, only, results_path):
    sys.path.insert(0, HERE)
    results = {"passed": 0, "failed": 0, "skipped": 0, "failures": [], "done": []}
    test_timeout = float(os.environ.get("SW_E2E_TEST_TIMEOUT", "120"))

    def save():
        with open(results_path, "w") as f:
            json.dump(results, f)

    def on_alarm(signum, frame):
        raise TestTimeout("test exceeded SW_E2E_TEST_TIMEOUT=%.0fs" % test_timeout)

    def on_term(signum, frame):
        raise SystemExit("runner: module killed (hard timeout)")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    names = test_names(os.path.join(HERE, mod + ".py"))
    if only:
        missing = [t for t in only if t not in names]
        for t in missing:
            report_fail("%s.%s" % (mod, t), "no such test in %s.py" % mod, results)
            results["done"].append(t)
        names = [t for t in names if t in only]
    save()

    try:
        spec = importlib.util.spec_from_file_location(mod, os.path.join(HERE, mod + ".py"))
        m = importlib.util.module_from_spec(spec)
        sys.modules[mod] = m
        signal.alarm(int(test_timeout))
        spec.loader.exec_module(m)
        m.SELECTED_TESTS = list(names)      # a module may prepare only for these
        if hasattr(m, "setup_module"):
            m.setup_module()
        signal.alarm(0)
    except BaseException as e:
        signal.alarm(0)
        if type(e).__name__ == "Skip" and type(e).__module__ == "cluster":
            for t in names:
                print("SKIP %s.%s: %s" % (mod, t, e))
                results["skipped"] += 1
                results["done"].append(t)
            save()
            return
        text = "setup of %s failed:\n%s" % (mod, traceback.format_exc())
        for i, t in enumerate(names):
            report_fail("%s.%s" % (mod, t), text, results, logs=i == 0)
            results["done"].append(t)
            text = "(setup of %s failed, see above)" % mod
        save()
        return

    for t in names:
        name = "%s.%s" % (mod, t)
        t0 = time.monotonic()
        try:
            signal.alarm(int(test_timeout))
            getattr(m, t)()
            signal.alarm(0)
            print("PASS %s (%.1fs)" % (name, time.monotonic() - t0))
            results["passed"] += 1
        except BaseException as e:
            signal.alarm(0)
            report_fail(name, traceback.format_exc(), results, time.monotonic() - t0)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                results["done"].append(t)
                save()
                raise
        results["done"].append(t)
        save()
        sys.stdout.flush()

    if hasattr(m, "teardown_module"):
        try:
            signal.alarm(int(test_timeout))
            m.teardown_module()
            signal.alarm(0)
        except BaseException:
            signal.alarm(0)
            report_fail("%s.teardown_module" % mod, traceback.format_exc(), results)
            save()


# --------------------------------------------------------------- the parent

def sweep(pidfile):
    """Kills the process group of every pid the child recorded and removes
    the temp dirs it recorded. Returns the number of groups signalled."""
    import shutil
    try:
        with open(pidfile) as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return 0
    n = 0
    for l in lines:
        if l.startswith("dir "):
            continue
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(int(l), sig)
                if sig == signal.SIGKILL:
                    n += 1
            except (ProcessLookupError, PermissionError):
                pass
    for l in lines:
        if l.startswith("dir "):
            shutil.rmtree(l[4:], ignore_errors=True)
    return n


def module_header(path, default):
    """(hard timeout, alone) of a module from its top level:
    `MODULE_TIMEOUT = N` (for one that builds images on a fresh machine),
    else <default>; `RUN_ALONE = True` for one that must not share the
    machine with another module (it loads both cores itself, or asserts
    timings that a second module's load would distort)."""
    import re
    with open(path) as f:
        text = f.read()
    m = re.search(r"^MODULE_TIMEOUT\s*=\s*(\d+)", text, re.M)
    alone = re.search(r"^RUN_ALONE\s*=\s*True", text, re.M) is not None
    return (float(m.group(1)) if m else default), alone


class Job:
    """One module running in its own child process (and process group)."""

    def __init__(self, mod, only, names, timeout, alone, state, capture):
        self.mod, self.only, self.names = mod, only, names
        self.timeout, self.alone = timeout, alone
        self.res_path = os.path.join(state, mod + ".json")
        self.pidfile = os.path.join(state, mod + ".pids")
        self.out_path = os.path.join(state, mod + ".out") if capture else None
        env = dict(os.environ, SW_E2E_PIDFILE=self.pidfile, PYTHONUNBUFFERED="1")
        out = open(self.out_path, "w") if capture else None
        self.t0 = time.monotonic()
        self.child = subprocess.Popen([PY, os.path.abspath(__file__), "--child", mod, self.res_path] +
                                      (only or []), env=env, start_new_session=True,
                                      stdout=out, stderr=subprocess.STDOUT if capture else None)
        if out:
            out.close()
        self.timed_out = False

    def poll(self):
        """True once the child has ended (killed at its hard timeout)."""
        if self.child.poll() is not None:
            return True
        if time.monotonic() - self.t0 < self.timeout:
            return False
        self.timed_out = True
        os.killpg(self.child.pid, signal.SIGTERM)      # lets atexit clean up
        try:
            self.child.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.child.pid, signal.SIGKILL)
            self.child.wait()
        return True

    def finish(self, total):
        """Sweeps what the module left, prints its output (when captured)
        and adds its results to <total>."""
        sweep(self.pidfile)
        if self.out_path:
            print("== %s (%d tests)" % (self.mod, len(self.names)))
            with open(self.out_path, errors="replace") as f:
                sys.stdout.write(f.read())
        try:
            with open(self.res_path) as f:
                r = json.load(f)
        except (OSError, ValueError):
            r = {"passed": 0, "failed": 0, "failures": [], "done": []}
        total["passed"] += r["passed"]
        total["failed"] += r["failed"]
        total["skipped"] += r.get("skipped", 0)
        total["failures"] += r["failures"]
        not_run = [t for t in self.names if t not in r["done"]]
        if self.timed_out or self.child.returncode != 0 or not_run:
            why = ("hard timeout after %.0fs (SW_E2E_MODULE_TIMEOUT / _TOTAL_TIMEOUT)" % self.timeout
                   if self.timed_out else "module process exited with status %s" % self.child.returncode)
            for t in not_run or ["(module)"]:
                name = "%s.%s" % (self.mod, t)
                print("FAIL %s\n    %s; test did not complete" % (name, why))
                total["failed"] += 1
                total["failures"].append(name)
        self.seconds = time.monotonic() - self.t0
        print("== %s: %.1fs" % (self.mod, self.seconds))
        sys.stdout.flush()


def main(argv):
    results_out = None
    if len(argv) >= 2 and argv[0] == "--results":
        results_out, argv = argv[1], argv[2:]
    sel = parse_selectors(argv)
    module_timeout = float(os.environ.get("SW_E2E_MODULE_TIMEOUT", "300"))
    budget_end = time.monotonic() + float(os.environ.get("SW_E2E_TOTAL_TIMEOUT", "1500"))
    jobs = max(1, int(os.environ.get("SW_E2E_JOBS", "2")))
    import tempfile
    state = tempfile.mkdtemp(prefix="sw-e2e-runner-")
    total = {"passed": 0, "failed": 0, "skipped": 0, "failures": []}

    # Modules that must run alone go first, one at a time; the rest share
    # the machine <jobs> at a time. A module's output is printed whole when
    # it ends (captured only when modules run side by side).
    pending = []
    for mod, only in sel.items():
        path = os.path.join(HERE, mod + ".py")
        try:
            names = test_names(path)
        except SyntaxError as e:
            print("FAIL %s.(module)\n    cannot parse: %s" % (mod, e))
            total["failed"] += 1
            total["failures"].append(mod + ".(module)")
            continue
        timeout, alone = module_header(path, module_timeout)
        pending.append((mod, only, only or names, timeout, alone))
    pending.sort(key=lambda p: not p[4])
    running, took = [], []
    t_start = time.monotonic()
    while pending or running:
        while pending and len(running) < jobs and not any(j.alone for j in running) \
                and not (pending[0][4] and running):
            mod, only, names, timeout, alone = pending.pop(0)
            left = budget_end - time.monotonic()
            if left < 10:
                for t in names:
                    name = "%s.%s" % (mod, t)
                    print("FAIL %s\n    not run: e2e time budget (SW_E2E_TOTAL_TIMEOUT) used up" % name)
                    total["failed"] += 1
                    total["failures"].append(name)
                continue
            capture = jobs > 1 and len(sel) > 1
            if capture:
                print("== %s started%s" % (mod, " (alone)" if alone else ""))
            else:
                print("== %s (%d tests)" % (mod, len(names)))
            sys.stdout.flush()
            running.append(Job(mod, only, names, min(timeout, left), alone, state, capture))
        for j in [j for j in running if j.poll()]:
            running.remove(j)
            j.finish(total)
            took.append((j.seconds, j.mod))
        if running:
            time.sleep(0.2)

    import shutil
    shutil.rmtree(state, ignore_errors=True)
    if len(took) > 1:
        print("e2e: %.0fs, %d modules, %d at a time; the slowest: %s" % (
            time.monotonic() - t_start, len(took), jobs,
            ", ".join("%s %.0fs" % (m, t) for t, m in sorted(took, reverse=True)[:8])))
    if total["skipped"]:
        print("e2e: %d skipped (see SKIP lines)" % total["skipped"])
    print("e2e: %d passed, %d failed" % (total["passed"], total["failed"]))
    if results_out:
        with open(results_out, "w") as f:
            json.dump(total, f)
    return 1 if total["failed"] or not total["passed"] else 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        try:
            run_module(sys.argv[2], sys.argv[4:], sys.argv[3])
        finally:
            try:
                import cluster
                cluster.cleanup()
            except Exception:
                pass
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
