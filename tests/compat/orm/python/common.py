"""
tests/compat/orm/python/common.py - the ORM scenario's runner for the Python
ORMs (Django, SQLAlchemy, peewee): argument parsing, one step at a time with
`ok <step>` / `FAIL <step>: <errno> <message>`, and the MySQL errno of a
refused statement. The steps themselves are in each ORM's program; their
order and meaning are in tests/compat/orm/README.md.
"""

import sys
import traceback

STEPS = ["create", "bulk_create", "get", "paginate", "count", "save", "refresh", "increment",
         "upsert", "get_or_create", "relation_create", "eager", "lazy", "delete_object",
         "delete_query", "tx_commit", "tx_rollback", "row_lock", "second_user"]


class Args:
    def __init__(self, argv):
        if len(argv) != 8 or argv[1] not in ("plain", "scoped"):
            sys.exit("usage: %s plain|scoped HOST PORT USER PASSWORD DB BASE" % argv[0])
        self.mode = argv[1]
        self.host, self.port = argv[2], int(argv[3])
        self.user, self.password, self.db = argv[4], argv[5], argv[6]
        self.base = int(argv[7])
        self.u1, self.u2 = self.base + 1, self.base + 2
        self.scoped = self.mode == "scoped"
        self.n_ids = 0

    def new_id(self):
        """An app-assigned id (ORMs that cannot generate part of a composite
        identity): -(BASE + n), unique, and negative so that it never meets the
        AUTO_INCREMENT ids other programs get from the table (README.md)."""
        self.n_ids += 1
        return -(self.base + self.n_ids)


def mysql_error(exc):
    """'<errno> <message>' of the MySQL error under an ORM's exception."""
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        args = getattr(e, "args", ())
        if len(args) >= 2 and isinstance(args[0], int) and 1000 <= args[0] < 5000:
            return "%d %s" % (args[0], " ".join(str(args[1]).split()))
        e = getattr(e, "orig", None) or e.__cause__ or e.__context__
    return "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")


def check(cond, what, got=None):
    if not cond:
        raise AssertionError("wrong result: %s%s" % (what, "" if got is None else
                                                   " (got %r)" % (got,)))


class Runner:
    """Runs the steps in STEPS order; <impl> has a method per step, an
    optional begin_request() run before each (a request's middleware) and an
    optional after_failure() (e.g. to roll back a broken transaction)."""

    def __init__(self, impl):
        self.impl = impl
        self.failed = 0

    def run(self):
        for step in STEPS:
            try:
                begin = getattr(self.impl, "begin_request", None)
                if begin:
                    begin()
                getattr(self.impl, step)()
                print("ok %s" % step, flush=True)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                self.failed += 1
                print("FAIL %s: %s" % (step, mysql_error(e)), flush=True)
                if not isinstance(e, AssertionError) and "1235" not in str(mysql_error(e)):
                    traceback.print_exc(file=sys.stderr)
                after = getattr(self.impl, "after_failure", None)
                if after:
                    try:
                        after()
                    except Exception as e2:  # noqa: BLE001
                        print("# after_failure: %s" % mysql_error(e2), flush=True)
        print("DONE %d ok, %d failed" % (len(STEPS) - self.failed, self.failed), flush=True)


def main(app_class):
    """Runs the scenario of <app_class>(Args) with the program's arguments."""
    Runner(app_class(Args(sys.argv))).run()
