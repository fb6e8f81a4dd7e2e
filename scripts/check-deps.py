#!/usr/bin/env python3
"""Checks every package in Cargo.lock (from `cargo metadata`, seconds): its licence must
allow use in an MIT/Apache-2.0 project (an SPDX expression is evaluated: an OR needs one
acceptable side, an AND needs both), it must come from crates.io or this workspace (no git or
other registries), and crates present in more than one version are listed. Exits 1 on a
licence or source problem. `scripts/cargo-deny.sh` runs the fuller cargo-deny check.
"""
import json
import os
import re
import subprocess
import sys
import tomllib
from collections import defaultdict

# Licences compatible with distributing Ikon under MIT OR Apache-2.0: the `[licenses] allow`
# list of deny.toml, which scripts/cargo-deny.sh checks too (permissive licences only;
# GPL/AGPL/LGPL and other copyleft licences are acceptable only as the unchosen side of an OR).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deny.toml"), "rb") as f:
    ALLOWED = set(tomllib.load(f)["licenses"]["allow"])


def tokens(expr):
    # Old crates write "MIT/Apache-2.0" for "MIT OR Apache-2.0".
    expr = re.sub(r"\s*/\s*", " OR ", expr)
    return re.findall(r"\(|\)|[A-Za-z0-9.+-]+", expr)


def acceptable(expr):
    """Evaluates an SPDX expression: True when some choice of its ORs is all allowed."""
    toks = tokens(expr)
    pos = 0

    def atom():
        nonlocal pos
        if pos >= len(toks):
            raise ValueError("unexpected end")
        t = toks[pos]
        pos += 1
        if t == "(":
            v = disjunction()
            if pos >= len(toks) or toks[pos] != ")":
                raise ValueError("missing )")
            pos += 1
            return v
        name = t
        if pos + 1 < len(toks) and toks[pos] == "WITH":
            name = f"{t} WITH {toks[pos + 1]}"
            pos += 2
        return name in ALLOWED

    def conjunction():
        nonlocal pos
        v = atom()
        while pos < len(toks) and toks[pos] == "AND":
            pos += 1
            v = atom() and v
        return v

    def disjunction():
        nonlocal pos
        v = conjunction()
        while pos < len(toks) and toks[pos] == "OR":
            pos += 1
            v = conjunction() or v
        return v

    v = disjunction()
    if pos != len(toks):
        raise ValueError(f"unexpected {toks[pos]!r}")
    return v


# The evaluator's own check, run first: expressions seen in the wild and their verdicts.
KNOWN = {
    "MIT": True, "GPL-3.0": False, "MIT OR GPL-3.0": True, "MIT AND GPL-3.0": False,
    "(MIT OR Apache-2.0) AND Unicode-3.0": True, "MIT/Apache-2.0": True,
    "Apache-2.0 WITH LLVM-exception OR MIT": True, "LGPL-2.1-or-later": False,
    "AGPL-3.0-only OR SSPL-1.0": False, "MIT OR Apache-2.0 OR LGPL-2.1-or-later": True,
}


def main():
    for expr, want in KNOWN.items():
        if acceptable(expr) != want:
            sys.exit(f"check-deps: the licence evaluator judges {expr!r} wrongly")
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True, capture_output=True, text=True).stdout)
    problems = []
    versions = defaultdict(set)
    for p in meta["packages"]:
        name, version = p["name"], p["version"]
        versions[name].add(version)
        source = p.get("source")
        if source is not None and source != "registry+https://github.com/rust-lang/crates.io-index":
            problems.append(f"{name} {version}: comes from {source}, not crates.io")
        lic = p.get("license")
        if not lic:
            problems.append(f"{name} {version}: declares no SPDX licence")
            continue
        try:
            ok = acceptable(lic)
        except ValueError as e:
            problems.append(f"{name} {version}: licence {lic!r} does not parse ({e})")
            continue
        if not ok:
            problems.append(f"{name} {version}: licence {lic!r} is not compatible with MIT/Apache-2.0")
    dups = {n: sorted(v) for n, v in versions.items() if len(v) > 1}
    print(f"dependencies: {len(meta['packages'])} packages, {len(problems)} licence or source "
          f"problems, {len(dups)} crates in more than one version")
    for n, v in sorted(dups.items()):
        print(f"  two or more versions: {n} {', '.join(v)}")
    for line in problems:
        print(f"  PROBLEM: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
