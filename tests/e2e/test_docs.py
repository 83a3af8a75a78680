"""
tests/e2e/test_docs.py - the reference docs keep up with the code: every
configuration key the router accepts is in docs/config.md and the example
config; every shardctl verb is in docs/shardctl.md and shardctl(8); the man
pages render without groff warnings and `shardwire --help` points at them.
"""

import os
import re
import subprocess

import cluster

ROOT = cluster.REPO


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def config_keys():
    """Keys router/config.c accepts: the UKEY/SKEY tables and the explicit
    strcmp(key, "...") branches."""
    src = read("router", "config.c")
    keys = set(re.findall(r'\b[US]KEY\((\w+)', src))
    keys |= set(re.findall(r'strcmp\(key, "(\w+)"\) == 0', src))
    keys.discard("field")       # the macros' own parameter name
    assert len(keys) > 20, keys
    return keys


def test_every_config_key_documented():
    doc = read("docs", "config.md")
    example = read("docs", "shardwire.conf.example")
    missing = sorted(k for k in config_keys() if "`%s`" % k not in doc)
    assert not missing, "keys missing from docs/config.md: %s" % missing
    missing = sorted(k for k in config_keys() if not re.search(r"^#?\s*%s\s*=" % k, example, re.M))
    assert not missing, "keys missing from docs/shardwire.conf.example: %s" % missing


def shardctl_verbs():
    out = subprocess.run([cluster.shardctl_path(), "--help"], capture_output=True, text=True,
                         timeout=30).stdout
    verbs = re.findall(r"^  ([a-z][a-z-]+)\b", out, re.M)
    assert "failover" in verbs and "status" in verbs, out
    return verbs


def test_every_shardctl_verb_documented():
    doc = read("docs", "shardctl.md")
    man = read("docs", "man", "shardctl.8")
    for v in shardctl_verbs():
        assert "### %s" % v in doc, "verb %s missing from docs/shardctl.md" % v
        assert ".B %s" % v.replace("-", "\\-") in man, "verb %s missing from shardctl(8)" % v


def test_man_pages_render_cleanly():
    for page in ("shardwire.8", "shardctl.8"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                            os.path.join(ROOT, "docs", "man", page)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and not r.stderr.strip(), (page, r.stderr)


def test_shardwire_help_names_its_options():
    out = subprocess.run([cluster.shardwire_path(), "--help"], capture_output=True, text=True,
                         timeout=30).stdout
    man = read("docs", "man", "shardwire.8")
    for opt in re.findall(r"(--[a-z-]+)", out):
        assert opt.replace("-", "\\-") in man, "shardwire(8) lacks %s" % opt
