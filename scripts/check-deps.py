#!/usr/bin/env python3
"""Checks every package in Cargo.lock (from `cargo metadata`, seconds): its licence must
allow use in an MIT/Apache-2.0 project (an SPDX expression is evaluated: an OR needs one
acceptable side, an AND needs both), it must come from crates.io or this workspace (no git or
other registries), and crates present in more than one version are listed. Exits 1 on a
licence or source problem. `scripts/cargo-deny.sh` runs the fuller cargo-deny check.
"""
import json
import re
import subprocess
import sys
from collections import defaultdict

# Licences compatible with distributing Ikon under MIT OR Apache-2.0 (permissive ones only;
# GPL/AGPL/LGPL and other copyleft licences are acceptable only as the unchosen side of an OR).
ALLOWED = {
    "MIT", "MIT-0", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause",
    "BSD-3-Clause", "ISC", "Zlib", "Unicode-3.0", "CC0-1.0", "Unlicense", "BSL-1.0",
    "CDLA-Permissive-2.0",
}


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


def main():
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
