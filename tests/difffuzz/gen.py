"""
tests/difffuzz/gen.py - the statement generator of the differential fuzzer.

Builds SQL from MariaDB 10.11's token classes and grammar, around a base of
statements confined to one user (`WHERE userid = 42 ...`), so that many are
routed and an unconfined reading hides only at a lexer/grammar boundary:

  * keywords: reserved and non-reserved words (learnt from the live server,
    see difffuzz.learn_keywords) as bare column names, table and column
    aliases, after a qualifier dot (`o.where`) and in backquotes;
  * numbers glued to words (`42OR`, `OR.5`, `1e1AND`, `.1OR`, `0x1fOR`);
  * every comment form: `#`, `-- `, `--<control>`, `/* */`, `/*+ */`,
    `/*! */`, `/*!NNNNN */` and `/*!NNNNNN */` (leading zeros too),
    `/*M!NNNNNN */`, with `\\r` and `\\r\\n` line ends;
  * charset introducers (`_utf8mb4'42'`, `_utf16`, `_utf32`, `_ucs2`,
    `_binary`, `_latin1`, `_filename`, 7-bit sets, unknown `_word 'x'`),
    `N'..'`, `X'..'`, COLLATE;
  * every operator precedence level of sql_yacc.yy (lowest first):
    `:=`; OR `||`; XOR; AND `&&`; NOT; BETWEEN CASE WHEN THEN ELSE;
    = <=> >= > <= < <> != IS LIKE REGEXP IN; |; &; << >>; - +;
    * / % DIV MOD; ^; unary - ~; !; BINARY COLLATE; INTERVAL;
  * function names in backquotes, subqueries, joins, UNION, nesting;
  * writes: UPDATE, DELETE, INSERT/REPLACE (VALUES, SELECT, ON DUPLICATE
    KEY UPDATE), RETURNING.

A statement is first built as a list of pieces (tokens or short phrases)
and then joined with separators that are usually a space but may be a
comment of any form, a line break, or nothing at all (gluing two tokens).

Every generated statement carries the set of class labels it used, so a
leak can be reported by class. Deterministic: the same seed, keyword lists
and index give the same statement.
"""

import random

# Users that the statements name (the "U" of the differential check) and
# the other users that also hold rows; 0 and small neighbours catch keys
# that the server converts to another number than the analyzer routes.
TARGET_USERS = [42, 7, 0, -1, 1]
OTHER_USERS = [43, 41, 2, 4, 420, 4242, 13362, 9223372036854775807, -9223372036854775808]
ALL_USERS = TARGET_USERS + OTHER_USERS

TABLES = ["orders", "items", "notes"]

# Columns named by keywords: the ones named in issue 8 and a spread of
# reserved and non-reserved words. Created (backquoted) in every table so
# statements using them run.
KW_COLUMNS = [
    "end", "order", "where", "case", "limit", "into", "returning", "lock", "having", "key",
    "status", "date", "comment", "action", "first", "last", "level", "mode", "name", "value",
    "year", "text", "escape", "rows", "window", "over", "interval", "row", "offset", "fetch",
    "share", "nowait", "skip", "wait", "ignore", "then", "when", "else", "begin", "do", "if",
    "charset", "update", "except", "intersect", "values", "sounds", "member", "unknown",
    "between", "and", "or", "xor", "not", "is", "like", "regexp", "in", "div", "mod", "binary",
    "collate", "union", "select", "from", "group", "by", "on", "using", "join", "exists",
    "true", "false", "null", "for", "set", "delete", "insert", "default", "global", "session",
    "elsif", "lateral", "json_table", "dual", "straight_join", "natural", "left", "right",
    "_foo", "_bar",
]

# Words that start or end a clause or construct (issue 8's list): most
# likely to be misread after a qualifier dot.
CLAUSE_WORDS = ["case", "having", "into", "lock", "order", "limit", "where", "returning", "end",
                "then", "else", "when", "union", "from", "for", "group", "window", "on",
                "using", "join", "set", "values", "select"]

BASE_COLUMNS = ["userid", "id", "a", "b", "n", "note", "status2", "total", "created", "parent"]

# Data type of each column for CREATE TABLE (difffuzz.py); keyword columns are INT.
COLUMN_DDL = (
    "userid BIGINT NOT NULL, id BIGINT NOT NULL DEFAULT 0, a INT, b INT, n INT,"
    " note VARCHAR(40), status2 VARCHAR(10), total DECIMAL(10,2), created DATETIME,"
    " parent BIGINT, " + ", ".join("`%s` INT" % c for c in KW_COLUMNS) +
    ", PRIMARY KEY (userid, id), KEY (id), KEY ix_a (a)")


def row_values(user, i):
    """Row <i> (1..3) of <user>: ids collide across users, values vary with
    the user so that a leaked row or aggregate differs from U's."""
    u = user % 1000
    vals = [user, i, i % 2, (i + u) % 5, i + 10 * (u % 7), "note %d" % ((i + u) % 4),
            ("open", "paid", "x")[i % 3], "%d.50" % (i * 10 + u % 3),
            "2024-06-0%d 12:00:00" % i, i - 1]
    vals += [(i + k + u) % 4 for k in range(len(KW_COLUMNS))]
    return vals


# ------------------------------------------------------------------ tokens

INTRODUCERS_SAME = ["_utf8mb4", "_utf8mb3", "_utf8", "_latin1", "_binary", "_ascii", "_cp1251"]
INTRODUCERS_OTHER = ["_utf16", "_utf16le", "_utf32", "_ucs2", "_filename", "_swe7", "_hp8",
                     "_dec8", "_keybcs2", "_tis620"]
UNKNOWN_INTRODUCERS = ["_foo", "_bar"]           # columns to MariaDB, not introducers
COLLATIONS = ["utf8mb4_bin", "utf8mb4_general_ci", "binary", "latin1_swedish_ci",
              "utf8mb4_unicode_ci"]

FIVE_DIGIT_VERSIONS = ["00000", "01000", "05070", "10000", "32302", "40000", "40101", "50000",
                       "50500", "50699", "50700", "50701", "80000", "99999"]
SIX_DIGIT_VERSIONS = ["000000", "010000", "050700", "099999", "100000", "100500", "101100",
                      "101199", "101200", "110000", "999999"]
ODD_VERSIONS = ["5070", "1", "0", "1011000", "0101100"]
# 6 digits with a leading zero: a MySQL-style 5-digit version to one
# reader, a 6-digit MariaDB one to the other
LEADING_ZERO_VERSIONS = ["050700", "050699", "050701", "050000", "099999", "080000", "040101",
                         "010000", "000000", "0507000", "00000"]

GLUE_NUMBERS = ["42", "1", "0", ".5", ".1", "1.", "1.5", "1e1", "1E1", "1e+1", "1e-1", "1.e1",
                ".5e1", "0x1f", "0X1F", "0b1", "0x", "0b", "1e", "08", "1_0", "X'41'",
                "x''", "b'1'", "'x'", "\"x\"", "`a`", "9223372036854775808"]
GLUE_WORDS = ["OR", "AND", "XOR", "DIV", "MOD", "IS", "IN", "LIKE", "REGEXP", "BETWEEN", "OR.5",
              "AND.5", "OR1", "e1", "E1", "e", "NOT", "COLLATE", "||", "&&", "|", "OR0x1",
              "ORDER", "LIMIT", "UNION", "FROM", "END", "WHERE", "HAVING", "INTO", "FOR"]

SAFE_FUNCS = [("abs", 1), ("coalesce", 2), ("greatest", 2), ("least", 2), ("ifnull", 2),
              ("if", 3), ("concat", 2), ("length", 1), ("char_length", 1), ("lower", 1),
              ("upper", 1), ("nullif", 2), ("mod", 2), ("sign", 1), ("hex", 1), ("crc32", 1),
              ("left", 2), ("right", 2), ("field", 2), ("isnull", 1), ("floor", 1),
              ("round", 1), ("cast_char", 1)]


GLUE = "\x00"        # a piece starting with this is joined to the previous one


class Stmt:
    """One generated statement: its text, the user it is built for, the
    class labels it used and whether it writes."""

    __slots__ = ("sql", "user", "labels", "write", "short", "attacks", "scope")

    def __init__(self, sql, user, labels, write):
        self.sql, self.user, self.labels, self.write = sql, user, labels, write
        self.short = None
        self.attacks = []
        self.scope = None       # difffuzz: the user of the scoped session it is sent on


class Gen:
    """Statement generator. <kw> is difffuzz.learn_keywords()'s dict:
    'reserved', 'nonreserved' (bare column names), 'alias' (bare table
    aliases) as sets of upper-case words."""

    def __init__(self, seed, kw):
        self.r = random.Random(seed)
        self.kw = kw
        cols = set(c.upper() for c in KW_COLUMNS)
        self.bare_kw_cols = sorted(c.lower() for c in cols & kw["nonreserved"])
        self.reserved_kw_cols = sorted(c.lower() for c in cols & kw["reserved"])
        self.table_aliases = sorted(w.lower() for w in kw["alias"]
                                    if not w.startswith("_"))[:400]
        self.labels = set()
        self.attacks = set()
        # the share of WHERE conditions built without their key term: for
        # scoped sessions, whose rewrite must add it (difffuzz --scoped-share)
        self.unkeyed = 0.0

    # -------------------------------------------------------------- helpers

    def pick(self, seq):
        return self.r.choice(seq)

    def chance(self, p):
        return self.r.random() < p

    def label(self, *names):
        self.labels.update(names)

    def mark(self, name):
        """Labels the attack (the boundary case next to the key term) that
        the statement carries, for the leak report."""
        self.labels.add(name)
        self.attacks.add(name)

    # -------------------------------------------------------------- values

    def key_value(self, u):
        """A spelling of user <u>'s key; most are exact, some put an
        introducer or operator next to it."""
        r = self.r.random()
        s = str(u)
        if r < 0.45:
            return [s]
        if r < 0.55:
            return ["'%s'" % s]
        if r < 0.60 and u >= 0:
            return ["+" + s] if self.chance(0.5) else ["0" + s]
        if r < 0.68:
            self.label("introducer")
            return [self.pick(INTRODUCERS_SAME) + self.pick(["'%s'", " '%s'"]) % s]
        if r < 0.76:
            self.label("introducer-other")
            return [self.pick(INTRODUCERS_OTHER) + self.pick(["'%s'", " '%s'"]) % s]
        if r < 0.80:
            self.label("introducer")
            return ["N'%s'" % s]
        if r < 0.85:
            self.label("collate")
            return ["'%s'" % s, "COLLATE", self.pick(COLLATIONS)]
        if r < 0.88:
            self.label("unknown-introducer")
            return [self.pick(UNKNOWN_INTRODUCERS), "'%s'" % s]
        if r < 0.92:
            self.label("glue-number")
            return ["%s.0" % s if self.chance(0.5) else "%se0" % s]
        if r < 0.96 and u < 0:
            return ["-", str(-u)]
        return [s]

    def column(self, alias, base_only=False):
        """A column reference: base columns, keyword columns bare (non-
        reserved), after a qualifier dot (any) or backquoted (any)."""
        r = self.r.random()
        if base_only or r < 0.55:
            name = self.pick(["a", "b", "n", "id", "parent", "note", "total"])
            return "%s.%s" % (alias, name) if alias and self.chance(0.6) else name
        if r < 0.75 and self.bare_kw_cols:
            self.label("keyword-bare")
            c = self.pick(self.bare_kw_cols)
            return "%s.%s" % (alias, c) if alias and self.chance(0.3) else c
        if r < 0.92 and alias:
            self.label("keyword-after-dot")
            return "%s.%s" % (alias, self.pick(self.reserved_kw_cols + self.bare_kw_cols))
        self.label("keyword-backquoted")
        c = "`%s`" % self.pick(KW_COLUMNS)
        return "%s.%s" % (alias, c) if alias and self.chance(0.5) else c

    def keyref(self, alias):
        if alias and self.chance(0.7):
            if self.chance(0.05):
                # the same alias in another case: one table to a server with
                # lower_case_table_names=1, an unknown one (error) to ours
                self.label("alias-case")
                alias = alias.swapcase()
            return self.pick(["%s.userid", "%s.`userid`", "`%s`.userid", "%s.USERID"]) % alias
        return self.pick(["userid", "`userid`", "UserId"])

    def literal(self):
        r = self.r.random()
        if r < 0.5:
            return str(self.r.randint(0, 5))
        if r < 0.6:
            return self.pick(["'open'", "'paid'", "'note 1'", "'x'", "''"])
        if r < 0.7:
            self.label("glue-number")
            return self.pick([".5", "1.", "1e1", "0x1", "0b1", "X'31'", "1.5e0"])
        if r < 0.8:
            return self.pick(["NULL", "TRUE", "FALSE"])
        if r < 0.9:
            self.label("introducer")
            return self.pick(INTRODUCERS_SAME + INTRODUCERS_OTHER) + "'1'"
        return "-" + str(self.r.randint(0, 3))

    # -------------------------------------------------------------- expressions

    def expr(self, alias, depth, u):
        """A value expression (list of pieces) using one of the precedence
        levels; <depth> bounds the nesting."""
        if depth > 2 or self.chance(0.35):
            return [self.column(alias)] if self.chance(0.6) else [self.literal()]
        r = self.r.random()
        e = lambda: self.expr(alias, depth + 1, u)
        if r < 0.22:
            self.label("op-arith")
            op = self.pick(["+", "-", "*", "/", "%", "DIV", "MOD", "|", "&", "^", "<<", ">>"])
            return e() + [op] + e()
        if r < 0.30:
            self.label("op-unary")
            return [self.pick(["-", "~", "!", "+", "BINARY"])] + e()
        if r < 0.40:
            self.label("case")
            out = ["CASE"]
            if self.chance(0.4):
                out += e()
                for _ in range(self.r.randint(1, 2)):
                    out += ["WHEN"] + e() + ["THEN"] + e()
            else:
                for _ in range(self.r.randint(1, 2)):
                    out += ["WHEN"] + self.bool_expr(alias, depth + 1, u) + ["THEN"] + e()
            if self.chance(0.5):
                out += ["ELSE"] + e()
            return out + ["END"]
        if r < 0.52:
            self.label("function")
            name, n = self.pick(SAFE_FUNCS)
            if name == "cast_char":
                return ["CAST", "("] + e() + ["AS", self.pick(["CHAR", "SIGNED", "DECIMAL(5,1)"]),
                                              ")"]
            if self.chance(0.3):
                self.label("function-backquoted")
                name = "`%s`" % name
            out = [name, "("]
            for k in range(n):
                if k:
                    out.append(",")
                out += e()
            return out + [")"]
        if r < 0.58:
            self.label("interval")
            return ["created", self.pick(["+", "-"]), "INTERVAL"] + e() + [
                self.pick(["DAY", "HOUR", "MONTH", "SECOND"])]
        if r < 0.64:
            self.label("collate")
            return ["("] + e() + [")", "COLLATE", self.pick(COLLATIONS)] \
                if self.chance(0.5) else ["note", "COLLATE", self.pick(COLLATIONS)]
        if r < 0.72:
            self.label("subquery")
            return ["("] + self.subselect(alias, u, scalar=True) + [")"]
        if r < 0.78:
            self.label("glue-number")
            return [self.pick(GLUE_NUMBERS) + self.pick(["", " "])]
        return ["("] + e() + [")"]

    def predicate(self, alias, depth, u):
        """A comparison-level predicate."""
        r = self.r.random()
        e = lambda: self.expr(alias, depth + 1, u)
        if r < 0.35:
            self.label("op-compare")
            return e() + [self.pick(["=", "<=>", ">=", ">", "<=", "<", "<>", "!="])] + e()
        if r < 0.45:
            self.label("between")
            out = e() + [self.pick(["BETWEEN", "NOT BETWEEN"])] + e() + ["AND"] + e()
            if self.chance(0.4):
                self.label("between-nested")
                out = e() + ["BETWEEN"] + out + ["AND"] + e()
            return out
        if r < 0.55:
            self.label("is")
            return e() + ["IS", self.pick(["NULL", "NOT NULL", "TRUE", "NOT FALSE", "UNKNOWN"])]
        if r < 0.65:
            self.label("like")
            out = e() + [self.pick(["LIKE", "NOT LIKE"]), self.pick(["'n%'", "'%1'", "'x|%'"])]
            if self.chance(0.4):
                out += ["ESCAPE", self.pick(["'|'", "'!'"])]
            return out
        if r < 0.72:
            self.label("regexp")
            return e() + [self.pick(["REGEXP", "RLIKE", "NOT REGEXP"]), "'^n'"]
        if r < 0.82:
            self.label("in")
            out = e() + [self.pick(["IN", "NOT IN"]), "("]
            if self.chance(0.3):
                self.label("subquery")
                return out + self.subselect(alias, u) + [")"]
            for k in range(self.r.randint(1, 3)):
                out += ([","] if k else []) + e()
            return out + [")"]
        if r < 0.88:
            self.label("subquery")
            return [self.pick(["EXISTS", "NOT EXISTS"]), "("] + self.subselect(alias, u) + [")"]
        return e()

    def bool_expr(self, alias, depth, u):
        """A condition at or below the OR level (no key term)."""
        if depth > 2 or self.chance(0.5):
            return self.predicate(alias, depth, u)
        r = self.r.random()
        b = lambda: self.bool_expr(alias, depth + 1, u)
        if r < 0.5:
            self.label("op-logic")
            return b() + [self.pick(["AND", "&&", "OR", "||", "XOR"])] + b()
        if r < 0.7:
            self.label("not")
            return [self.pick(["NOT", "!"])] + b()
        return ["("] + b() + [")"]

    def key_term(self, alias, u):
        k, v = self.keyref(alias), self.key_value(u)
        r = self.r.random()
        if r < 0.7:
            return [k, "="] + v
        if r < 0.8:
            return v + ["=", k]
        if r < 0.85:
            return [k, "IN", "("] + v + [")"]
        if r < 0.93:
            return self.row_key_term(k, alias, u)
        return [k, "<=>"] + v

    def row_key_term(self, k, alias, u):
        """A row comparison on the key (issue 12): `(userid, id) IN ((U, 1),
        (U, 2))` or `(userid, id) = (U, 1)`, the key first or second, the
        ROW keyword sometimes; now and then one row names another user (it
        must then be refused)."""
        self.label("row-in")
        col = self.column(alias, base_only=True)
        first = self.chance(0.5)

        def row(user):
            v, lit = self.key_value(user), [self.literal()]
            return ([self.pick(["(", "ROW("])] + (v + [","] + lit if first else lit + [","] + v) +
                    [")"])

        left = [self.pick(["(", "ROW("])] + ([k, ",", col] if first else [col, ",", k]) + [")"]
        if self.chance(0.3):
            return left + ["="] + row(u)
        rows = []
        for i in range(self.r.randint(1, 3)):
            if i:
                rows.append(",")
            rows += row(self.pick(OTHER_USERS) if self.chance(0.1) else u)
        return left + ["IN", "("] + rows + [")"]

    def attack(self, alias, u, key):
        """Pieces placed next to the key term where the two readers may
        disagree about whether an OR (or a wider comparison) is there."""
        r = self.r.random()
        if r < 0.14:
            self.mark("comment")
            return [self.hidden_comment("OR 1=1")]
        if r < 0.26:
            self.mark("glue-number")
            return ["AND", self.column(alias, base_only=True), "=",
                    self.pick(GLUE_NUMBERS) + self.pick(GLUE_WORDS), self.pick(["1=1", "1"])]
        if r < 0.36:
            self.mark("op-precedence")
            return [self.pick(["IS NOT NULL", "IS NOT TRUE", "= 0", "<> 0", "| 1", "+ 0", "- 1",
                               "* 1", "^ 0", "<< 0", "DIV 1", "BETWEEN 0 AND 1", "IN (1)",
                               "LIKE '4%'", "REGEXP '.'", "IS UNKNOWN", "COLLATE binary",
                               "XOR 1", "|| 1", "OR 1", "AND 0 OR 1", "+ INTERVAL 1 DAY",
                               "= TRUE", "IS FALSE", "NOT BETWEEN 0 AND 1", "SOUNDS LIKE 'x'"])]
        if r < 0.44:
            self.mark("between-nested")
            return ["AND", "1", "BETWEEN", "0", "BETWEEN", "0", "AND", "1", "AND", "1", "OR",
                    "1=1"] if self.chance(0.5) else ["AND", "0", "BETWEEN", "0", "AND", "1"]
        if r < 0.54:
            self.mark("keyword-bare")
            c = "end" if self.chance(0.3) else self.pick(self.bare_kw_cols or ["a"])
            return self.pick([["AND", "CASE", "WHEN", c, "THEN", "1", "END", "OR", "1=1"],
                              ["AND", "(", "CASE", "WHEN", "1", "THEN", c, "END", ")", "OR",
                               "1=1"],
                              ["AND", c, "OR", "1=1"], ["AND", c, "=", c, "OR", "1=1"],
                              ["AND", "CASE", c, "WHEN", "1", "THEN", "1", "ELSE", c, "END",
                               "OR", "1=1"]])
        if r < 0.64 and alias:
            self.mark("keyword-after-dot")
            c = self.pick(CLAUSE_WORDS if self.chance(0.5) else
                          (self.reserved_kw_cols or ["order"]))
            return self.pick([["AND", "%s.%s" % (alias, c), "OR", "1=1"],
                              ["AND", "%s.%s" % (alias, c), "=", "1", "OR", "1=1"],
                              ["AND", "%s.%s" % (alias, c), "OR", "%s.userid" % alias, "<>",
                               key]])
        if r < 0.72:
            self.mark("unknown-introducer")
            return ["AND", self.pick(UNKNOWN_INTRODUCERS), "'x'", "OR", "1=1"]
        if r < 0.80:
            self.mark("function-backquoted")
            return ["AND", "`%s`" % self.pick(["if", "coalesce", "ifnull", "abs"]), "(", "1",
                    ",", "1", ")", "OR", "1=1"]
        if r < 0.86:
            # a word glued right after the key value: `42e0OR 1`, `42.OR 1`
            self.mark("glue-number")
            return [GLUE + self.pick(["", ".", ".0", "e0", "E0", ".0e0", "e+0", ".e0"]) +
                    self.pick(["OR", "XOR", "||", "OR.5", "OR1", "AND", "OR.5=.5"]),
                    self.pick(["1=1", "1", "TRUE", ".5", "a"])]
        if r < 0.92:
            # a keyword glued to a number after it: `OR.5`, `XOR1e1`, `||.5`
            self.mark("glue-number")
            return ["AND", self.column(alias, base_only=True), "=", "1",
                    self.pick(["OR", "XOR", "||", "AND", "OR", "DIV", "IS", "IN"]) +
                    self.pick([".5", "1", ".1e1", "1e1", "0x1", ".5e", "0", "1.", "'1'"])]
        return ["OR", "1=1"]            # plain: must never route

    def wrap(self, alias):
        """(before, after) pieces that put the key term inside a construct
        whose end a keyword-as-identifier or a nested BETWEEN may hide; the
        server then reads no top-level key term at all."""
        kw = self.pick(self.bare_kw_cols or ["end"])
        dotted = "%s.%s" % (alias, self.pick(self.reserved_kw_cols or ["case"])) if alias \
            else "`case`"
        r = self.r.random()
        if r < 0.15:
            # the key term inside an executable comment the server may skip
            self.mark("comment-version")
            v = self.pick(LEADING_ZERO_VERSIONS if self.chance(0.4) else
                          FIVE_DIGIT_VERSIONS + SIX_DIGIT_VERSIONS + ODD_VERSIONS + [""])
            return (["/*%s!%s" % (self.pick(["", "", "M"]), v)], ["AND */", "1=1"])
        if r < 0.3:
            self.mark("between-nested")
            return ([self.pick(["0", "1", "a"]), "BETWEEN", self.pick(["0", "1"]), "BETWEEN",
                     self.pick(["0", "1"]), "AND", self.pick(["0", "1"]), "AND"], [])
        self.mark("keyword-bare" if r < 0.7 else "keyword-after-dot")
        c = kw if r < 0.7 else dotted
        return self.pick([
            (["CASE", "WHEN", "0", "THEN", c, "AND"], ["ELSE", "1", "END"]),
            (["CASE", c, "WHEN", "0", "THEN", "0", "ELSE", "1", "END", "OR"], []),
            (["CASE", "WHEN", c, "THEN", c, "END", "OR"], []),
            (["IF", "(", "0", ",", c, "AND"], [",", "1", ")"]),
            (["COALESCE", "(", c, "AND"], [",", "1", ")", "OR", "1"]),
            (["(", c, "IS", "NULL", "AND"], [")", "IS", "NOT", "NULL"]),
            ([c, "OR"], []),
        ])

    def hidden_comment(self, payload):
        """A comment of any form holding <payload>; executed or not by the
        server depending on form and version."""
        r = self.r.random()
        if r < 0.1:
            return "/* %s */" % payload
        if r < 0.2:
            return "/*! %s */" % payload
        if r < 0.4:
            return "/*!%s %s */" % (self.pick(FIVE_DIGIT_VERSIONS + LEADING_ZERO_VERSIONS), payload)
        if r < 0.55:
            return "/*!%s %s */" % (self.pick(SIX_DIGIT_VERSIONS), payload)
        if r < 0.65:
            return "/*M!%s %s */" % (self.pick(SIX_DIGIT_VERSIONS + FIVE_DIGIT_VERSIONS), payload)
        if r < 0.7:
            return "/*!%s %s */" % (self.pick(ODD_VERSIONS), payload)
        if r < 0.75:
            return "/*!%s%s*/" % (self.pick(FIVE_DIGIT_VERSIONS + SIX_DIGIT_VERSIONS), payload)
        if r < 0.8:
            return "/*+ %s */" % payload
        if r < 0.85:
            return "-- x\r %s\n" % payload
        if r < 0.9:
            return "#x\r %s\n" % payload
        if r < 0.95:
            return "--%s%s\n" % (self.pick(["\t", "\x01", "\x7f", "\x0b", "\r"]), payload)
        return "/*M! %s */" % payload

    def cond(self, alias, u):
        """WHERE condition: a key term ANDed with other conditions, maybe
        with an attack next to the key term."""
        key = self.key_term(alias, u)
        if self.unkeyed and self.chance(self.unkeyed):
            self.label("unkeyed")
            key = self.bool_expr(alias, 0, u)
        if self.chance(0.1):
            before, after = self.wrap(alias)
            key = before + key + after
        conj = [key]
        for _ in range(self.r.randint(0, 2)):
            conj.append(self.bool_expr(alias, 0, u))
        if len(conj) > 1 and self.chance(0.6):
            self.r.shuffle(conj)
        out = []
        key_end = 0
        for k, c in enumerate(conj):
            if k:
                out.append(self.pick(["AND", "AND", "&&"]))
            out += ["("] + c + [")"] if len(c) > 3 and self.chance(0.3) else c
            if c is key:
                key_end = len(out)
        if self.chance(0.6):
            a = self.attack(alias, u, str(u))
            # mostly right after the key term, else anywhere
            pos = key_end if self.chance(0.7) else self.r.randint(0, len(out))
            out = out[:pos] + a + out[pos:]
        if self.chance(0.08):
            self.label("nesting")
            out = ["("] * 3 + out + [")"] * 3
        return out

    # -------------------------------------------------------------- statements

    def table(self):
        return self.pick(TABLES)

    def alias(self):
        r = self.r.random()
        if r < 0.6:
            return self.pick(["o", "t", "x1"])
        self.label("keyword-alias")
        return self.pick(self.table_aliases or ["t"])

    def subselect(self, outer, u, scalar=False):
        """A subquery: confined to U (correlated or by value) most of the time."""
        t, a = self.table(), self.pick(["s", "s2", "q"])
        col = self.column(a, base_only=True)
        sel = ["SELECT", ("MAX(%s)" % col) if scalar else col, "FROM", t, a, "WHERE"]
        r = self.r.random()
        if r < 0.45 and outer:
            w = ["%s.userid" % a, "=", "%s.userid" % outer]
        elif r < 0.9:
            w = self.key_term(a, u)
        else:
            w = self.predicate(a, 2, u)       # unconfined: must not route
        if self.chance(0.3):
            w += ["AND"] + self.predicate(a, 2, u)
        return sel + w

    def select_list(self, alias, u, group_col=None):
        """The select list; with <group_col>, that column and aggregates
        only (the session runs with ONLY_FULL_GROUP_BY)."""
        out = []
        if group_col:
            self.label("aggregate")
            out = [group_col]
            for _ in range(self.r.randint(1, 2)):
                out += [",", self.pick(["COUNT(*)", "SUM(%s)" % self.column(alias, True),
                                        "MAX(%s)" % self.column(alias, True),
                                        "MIN(%s)" % self.column(alias)])]
            return out
        for k in range(self.r.randint(1, 3)):
            if k:
                out.append(",")
            r = self.r.random()
            if r < 0.55:
                out.append(self.column(alias))
            elif r < 0.8:
                out += self.expr(alias, 1, u)
            else:
                out.append("*" if k == 0 and self.chance(0.5) else "%s.*" % alias)
                continue                    # no alias after a star
            if self.chance(0.2):
                self.label("keyword-alias")
                w = self.pick(sorted(self.kw["nonreserved"]) or ["x"]).lower()
                out += ([self.pick(["AS", ""]), w] if self.chance(0.6)
                        else ["AS", "`%s`" % self.pick(KW_COLUMNS)])
        return [p for p in out if p]

    def select(self, u):
        t, a = self.table(), self.alias()
        frm = [t, a] if self.chance(0.85) else [t, "AS", a]
        r = self.r.random()
        if r < 0.25:
            self.label("join")
            t2, b = self.table(), self.pick(["j", "i2"])
            kind = self.pick(["JOIN", "INNER JOIN", "LEFT JOIN", "STRAIGHT_JOIN", "CROSS JOIN"])
            on = self.pick([["ON", "%s.userid" % b, "=", "%s.userid" % a],
                            ["ON", "%s.userid" % a, "=", "%s.userid" % b, "AND",
                             "%s.id" % b, "=", "%s.id" % a],
                            ["USING", "(", "userid", ")"]])
            if kind == "STRAIGHT_JOIN" and on[0] == "USING":
                on = ["ON", "%s.userid" % b, "=", "%s.userid" % a]
            frm += [kind, t2, b] + on
        elif r < 0.32:
            self.label("derived")
            frm = ["("] + self.simple_select(u) + [")", a]
        out = ["SELECT"]
        if self.chance(0.1):
            out.append(self.pick(["DISTINCT", "SQL_NO_CACHE", "STRAIGHT_JOIN", "HIGH_PRIORITY"]))
        group_col = self.column(a, True) if self.chance(0.15) else None
        out += self.select_list(a, u, group_col) + ["FROM"] + frm + ["WHERE"] + self.cond(a, u)
        if group_col:
            out += ["GROUP", "BY", group_col]
            if self.chance(0.5):
                out += ["HAVING", "COUNT(*)", ">", "0"]
        if self.chance(0.2):
            out += ["ORDER", "BY", group_col or self.column(a), self.pick(["", "DESC", "ASC"])]
        if self.chance(0.15):
            # never below the largest confined result (U's rows joined), nor
            # ROWS EXAMINED: a cut that depends on other users' rows
            # scanned would make a confined statement look leaky
            out += ["LIMIT", self.pick(["1000", "100 OFFSET 0", "0, 1000"])]
        if self.chance(0.1):
            out += [self.pick(["FOR UPDATE", "LOCK IN SHARE MODE", "FOR UPDATE NOWAIT"])]
        if self.chance(0.08):
            self.label("union")
            out += [self.pick(["UNION", "UNION ALL", "UNION DISTINCT", "INTERSECT", "EXCEPT"])] \
                + self.simple_select(u)
        return [p for p in out if p]

    def simple_select(self, u):
        t, a = self.table(), self.pick(["d", "d2"])
        return ["SELECT", "*", "FROM", t, a, "WHERE"] + self.cond(a, u)

    def write(self, u):
        r = self.r.random()
        t = self.table()
        if r < 0.3:
            a = self.alias()
            out = ["UPDATE", t, a, "SET", "%s.%s" % (a, self.pick(["note", "a", "b", "`end`"])),
                   "="] + self.expr(a, 1, u)
            if self.chance(0.3):
                out += [",", self.column(a), "=", self.literal()]
            out += ["WHERE"] + self.cond(a, u)
            if self.chance(0.2):
                out += ["ORDER", "BY", "%s.id" % a, "LIMIT", "10"]
            return out
        if r < 0.5:
            out = ["DELETE", "FROM", t, "WHERE"] + self.cond(None, u)
            if self.chance(0.2):
                self.label("returning")
                out += ["RETURNING", self.pick(["id", "*", "userid, note", "`end`"])]
            return out
        if r < 0.8:
            self.label("insert")
            cols = ["userid", "id", self.pick(["a", "note", "`order`", "`end`", "b"])]
            vals = self.key_value(u) + [",", str(self.r.randint(50, 60)), ","] + \
                (self.expr(None, 2, u) if self.chance(0.5) else [self.literal()])
            out = [self.pick(["INSERT", "INSERT IGNORE", "REPLACE"]), "INTO", t, "("] + \
                [", ".join(cols)] + [")", "VALUES", "("] + vals + [")"]
            if out[0] == "INSERT" and self.chance(0.3):
                out += ["ON", "DUPLICATE", "KEY", "UPDATE", "a", "="] + self.expr(None, 2, u)
            if self.chance(0.15):
                self.label("returning")
                out += ["RETURNING", self.pick(["id", "*", "userid"])]
            return out
        self.label("insert-select")
        a = self.pick(["s", "o"])
        return ["INSERT", "INTO", t, "(", "userid, id, note", ")", "SELECT", "userid",
                ",", "id + 100", ",", self.pick(["note", "'c'", "%s.note" % a]), "FROM",
                self.table(), a, "WHERE"] + self.cond(a, u)

    # -------------------------------------------------------------- joining

    SEPARATORS = [" ", "\n", "\t", "  ", "/**/", "/* c */", "/*!*/", "-- c\n", "#c\n",
                  "--\tc\n", "-- c\r\n", "/*+ h */", "\r\n", "\x0b", "\x0c"]

    @staticmethod
    def gluable(prev, p):
        """Two pieces whose glued form is worth trying: not two plain words
        (that is just a longer word)."""
        word = lambda c: c.isalpha() or c == "_"
        return not (word(prev[-1:]) and word(p[:1]))

    def join(self, pieces):
        """Joins <pieces> with separators: mostly one space, sometimes a
        comment, a line end, or nothing (two tokens glued together)."""
        out = [pieces[0]]
        for p in pieces[1:]:
            r = self.r.random()
            prev = out[-1]
            if p.startswith(GLUE):
                out.append(p[1:])           # glued on purpose by an attack
                continue
            if r < 0.86:
                sep = " "
            elif r < 0.93:
                self.label("comment")
                sep = self.pick(self.SEPARATORS)
                if sep.startswith("/*!") or sep.startswith("/*+"):
                    self.label("comment-exec")
            elif self.gluable(prev, p) or r > 0.995:
                # glue: a number and a word, punctuation, or (rarely) two words
                self.label("glue-number" if prev[-1:].isdigit() or p[:1].isdigit()
                           or p[:1] == "." else "glue")
                sep = ""
            else:
                sep = " "
            if self.chance(0.006):
                self.label("comment-exec")
                v = self.pick(FIVE_DIGIT_VERSIONS + SIX_DIGIT_VERSIONS + [""])
                out.append("%s/*%s!%s %s */" % (sep, self.pick(["", "M"]), v, p))
                continue
            out.append(sep + p)
        return "".join(out)

    def mutate(self, pieces):
        """Small random edits of a built statement: drop, repeat or swap a
        piece, or put a clause word in the middle."""
        self.mark("mutation")
        for _ in range(self.r.randint(1, 2)):
            i = self.r.randrange(1, len(pieces))
            r = self.r.random()
            if r < 0.3:
                del pieces[i]
            elif r < 0.5:
                pieces.insert(i, pieces[i])
            elif r < 0.7 and i + 1 < len(pieces):
                pieces[i], pieces[i + 1] = pieces[i + 1], pieces[i]
            else:
                pieces.insert(i, self.pick(["OR", "AND", "(", ")", "END", "CASE", "WHEN",
                                            "THEN", "ELSE", "BETWEEN", "NOT", ",", "1", "'x'",
                                            "ORDER", "BY", "LIMIT", "HAVING", "INTO", "SELECT",
                                            "FROM", "WHERE", "UNION", "IS", "NULL"]))

    def statement(self):
        """A new Stmt."""
        self.labels = set()
        self.attacks = set()
        u = self.pick(TARGET_USERS)
        write = self.chance(0.3)
        pieces = self.write(u) if write else self.select(u)
        if self.chance(0.1):
            self.mutate(pieces)
        sql = self.join(pieces)
        if self.chance(0.03):
            self.label("comment")
            sql = self.pick(["/* lead */ ", "-- lead\n", "#lead\n", "/*!*/ "]) + sql
        if self.chance(0.03):
            sql += self.pick([";", " ;", "; ", " -- trail", " #trail", " /* trail */"])
        st = Stmt(sql, u, sorted(self.labels), write)
        st.attacks = sorted(self.attacks)
        return st
