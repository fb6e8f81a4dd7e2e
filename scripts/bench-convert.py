#!/usr/bin/env python3
"""Conversion benchmark: Ikon against qemu-img in the same run, with `cat` as the read limit.

Builds a realistic disk (default 4 GiB: about half data — real files from /usr, compressible
like an OS disk — and half zeros, partly holes and partly written zeros) and a dense random
disk (default 2 GiB). For every pair among raw, qcow2, vhd, vmdk monolithicSparse and vmdk
streamOptimized (plus compressed qcow2 output, zlib and zstd) it writes the source with qemu-img, then times
`ikon img convert` and `qemu-img convert` on it, each followed by an fsync of the output,
and records peak memory (each tool runs --repeat times, alternating which goes first after a
sync; the fastest run counts). Prints a markdown table with the ratio qemu-img time / Ikon time
(> 1 means Ikon is faster) and, for raw<->qcow2, Ikon's time against `cat` of the source.

A conversion has to write its output durably, so beside `cat` the script measures the write
limit: the same number of bytes as Ikon's output allocates, written with O_DIRECT and
fsynced (4 MiB writes of random data). "ikon vs I/O" is Ikon's time against the slower of the
read limit and that write limit (not shown for compressed outputs, which are bound by
compression on the cores). With --cold, the source is dropped from the page cache
(posix_fadvise DONTNEED) before every timed run of cat, Ikon and qemu-img, so the read limit
is the disk's, as for an image that was not just written.

Compressed outputs are also measured on data of one kind each (default 256 MiB a disk, raw
source): hex text, base64 text, log lines, binaries (real executables and libraries), already
compressed data, and a mixed disk laid out like a file system (runs of 4 KiB blocks of every
kind, random bytes and zeros, so clusters hold more than one kind). For compressed outputs the
table gives "size ikon/qemu": the goal is at most 1.02 on every kind.

Usage: bench-convert.py [--dir DIR] [--real-gib 4] [--random-gib 2] [--only REGEX]
                        [--kinds LIST] [--kind-mib 256]
                        [--repeat N] [--compressed-repeat N] [--clean] [--cold] [--ikon PATH]

A disk none of whose pairs match --only is not built. --clean deletes a disk's source files
once its pairs are done (the two disks with all their sources take about 20 GiB).
"""
import argparse
import base64
import mmap
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zlib

FORMATS = {
    # name: (qemu-img -O args, ikon -O args, qemu format name)
    "raw": (["-O", "raw"], ["-O", "raw"], "raw"),
    "qcow2": (["-O", "qcow2"], ["-O", "qcow2"], "qcow2"),
    "vhd": (["-O", "vpc", "-o", "subformat=dynamic,force_size=on"], ["-O", "vhd", "-o", "force_size=on"], "vpc"),
    "vmdk-sparse": (["-O", "vmdk", "-o", "subformat=monolithicSparse"], ["-O", "vmdk"], "vmdk"),
    "vmdk-stream": (["-O", "vmdk", "-o", "subformat=streamOptimized"],
                    ["-O", "vmdk", "-o", "subformat=streamOptimized"], "vmdk"),
}
OUTPUTS = dict(FORMATS)
OUTPUTS["qcow2-c"] = (["-O", "qcow2", "-c"], ["-O", "qcow2", "-c"], "qcow2")
OUTPUTS["qcow2-zstd"] = (["-O", "qcow2", "-c", "-o", "compression_type=zstd"],
                         ["-O", "qcow2", "-c", "-o", "compression_type=zstd"], "qcow2")
COMPRESSED = ("vmdk-stream", "qcow2-c", "qcow2-zstd")
MIB = 1 << 20


def timed(cmd, out, scratch):
    """Run `cmd`, then fsync `out`; returns (seconds, the command's peak RSS in MiB).

    The peak comes from /usr/bin/time, whose small process forks the command: a child forked
    from this Python process would count the interpreter's pages as the tool's.
    """
    rss_file = os.path.join(scratch, "rss.txt")
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}")
    if out and os.path.exists(out):
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    elapsed = time.perf_counter() - t
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    return elapsed, rss_kib / 1024.0


def evict(path):
    """Drop a file's pages from the page cache (clean pages only, hence the fsync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


WRITE_LIMITS = {}


def write_limit(directory, nbytes):
    """Seconds to write `nbytes` (rounded up to 4 MiB) with O_DIRECT plus an fsync, the way a
    conversion's output reaches the disk; the best of three, measured once per size."""
    unit = 4 * MIB
    n = max(1, -(-nbytes // unit))
    if n in WRITE_LIMITS:
        return WRITE_LIMITS[n]
    buf = mmap.mmap(-1, unit)  # page aligned, as O_DIRECT needs
    buf.write(os.urandom(unit))
    path = os.path.join(directory, "write-limit.tmp")
    best = float("inf")
    for _ in range(3):
        os.sync()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0))
        t = time.perf_counter()
        try:
            for i in range(n):
                os.pwritev(fd, [buf], i * unit)
            os.fsync(fd)
        finally:
            os.close(fd)
        best = min(best, time.perf_counter() - t)
        os.unlink(path)
    WRITE_LIMITS[n] = best
    return best


def usr_seed(path, roots=("/usr/lib", "/usr/share", "/usr/bin"), want=None, limit=512 * MIB):
    """Up to `limit` bytes of real files under `roots` as one tar stream (those `want`
    accepts)."""
    tarpath = path + ".seed.tar"
    with tarfile.open(tarpath, "w") as tf:
        total = 0
        for root in roots:
            for dp, _, files in os.walk(root):
                for f in files:
                    fp = os.path.join(dp, f)
                    try:
                        if os.path.islink(fp) or not os.path.isfile(fp):
                            continue
                        if want and not want(fp):
                            continue
                        tf.add(fp)
                        total += os.path.getsize(fp)
                    except (OSError, tarfile.TarError):
                        continue
                    if total > limit:
                        break
                if total > limit:
                    break
    seed = open(tarpath, "rb").read()
    os.unlink(tarpath)
    return seed


def make_realistic(path, size):
    """Half data (real /usr files, a tar stream repeated), half zeros (holes and written)."""
    chunk = 64 * MIB
    seed = usr_seed(path)
    with open(path, "wb") as f:
        f.truncate(size)
        pos = 0
        i = 0
        s = 0
        while pos < size:
            n = min(chunk, size - pos)
            kind = i % 4
            if kind in (0, 2):  # data
                buf = bytearray()
                while len(buf) < n:
                    take = min(n - len(buf), len(seed) - s)
                    buf += seed[s:s + take]
                    s = (s + take) % len(seed)
                f.seek(pos)
                f.write(buf)
            elif kind == 1:  # explicitly written zeros
                f.seek(pos)
                f.write(bytes(n))
            # kind 3: hole
            pos += n
            i += 1


def make_random(path, size):
    with open(path, "wb") as f:
        for _ in range(size // (64 * MIB)):
            f.write(os.urandom(64 * MIB))


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


LOG_LEVELS = (b"INFO", b"INFO", b"INFO", b"DEBUG", b"WARN", b"ERROR")
LOG_PARTS = (b"api", b"scheduler", b"store", b"nbd", b"auth", b"import", b"gc")


def log_lines(n, rng_bytes):
    """About `n` bytes of JSON log lines: a clock, levels, components, request ids, figures."""
    out = bytearray()
    t = 1_700_000_000_000
    i = 0
    while len(out) < n:
        at = (i * 8) % (len(rng_bytes) - 8)
        r = rng_bytes[at:at + 8]
        t += r[0] * 7
        out += (b'{"ts":%d,"level":"%s","component":"%s","request_id":"%s","latency_ms":%d,'
                b'"bytes":%d,"msg":"request served"}\n'
                % (t, LOG_LEVELS[r[1] % len(LOG_LEVELS)], LOG_PARTS[r[2] % len(LOG_PARTS)],
                   r[3:8].hex().encode(), r[1] * 3 + r[2] % 17, int.from_bytes(r[4:8], "little")))
        i += 1
    return bytes(out[:n])


POOLS = {}


def kind_pools(path, unit):
    """`unit` bytes (at least) of each kind of data, for the one-kind and mixed disks (made
    once per run)."""
    if unit in POOLS:
        return POOLS[unit]
    rnd = os.urandom(unit)
    binary = usr_seed(path, ("/usr/bin", "/usr/lib", "/usr/libexec"), is_elf, unit)
    while len(binary) < unit:
        binary += binary
    packed = bytearray()
    for at in range(0, len(binary), 4 * MIB):
        packed += zlib.compress(binary[at:at + 4 * MIB], 6)
        if len(packed) >= unit:
            break
    while len(packed) < unit:
        packed = packed + packed
    b64 = base64.encodebytes(os.urandom(unit * 3 // 4 + 64))
    POOLS[unit] = {
        "hex": os.urandom(unit // 2 + 1).hex().encode()[:unit],
        "base64": b64[:unit],
        "logs": log_lines(unit, rnd),
        "binary": bytes(binary[:unit]),
        "compressed": bytes(packed[:unit]),
        "random": rnd,
    }
    return POOLS[unit]


def make_kind(kind):
    """A maker for a disk filled with one kind of data, or with all of them mixed."""
    def make(path, size):
        unit = min(size, 64 * MIB)
        pools = kind_pools(path, unit)
        with open(path, "wb") as f:
            if kind != "mixed":
                for at in range(0, size, unit):
                    f.write(pools[kind][:min(unit, size - at)])
                return
            # Runs of 1-32 blocks of 4 KiB, each run of one kind (zeros among them), the way
            # a file system lays files out: most clusters hold parts of two or more kinds.
            names = sorted(pools) + ["zeros"]
            state = int.from_bytes(os.urandom(8), "little")
            at = 0
            while at < size:
                state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
                kind_of = names[(state >> 33) % len(names)]
                n = min((1 + (state >> 40) % 32) * 4096, size - at)
                if kind_of == "zeros":
                    f.write(bytes(n))
                else:
                    pool = pools[kind_of]
                    start = (state >> 20) % (len(pool) - n) if len(pool) > n else 0
                    f.write(pool[start:start + n])
                at += n
    return make


KINDS = ("hex", "base64", "logs", "binary", "compressed", "mixed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/ikon-bench")
    ap.add_argument("--real-gib", type=int, default=4)
    ap.add_argument("--random-gib", type=int, default=2)
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help="disks of one kind of data each, for compressed outputs (comma "
                    f"separated; any of {', '.join(KINDS)}; empty for none)")
    ap.add_argument("--kind-mib", type=int, default=256,
                    help="size of each one-kind disk in MiB (a multiple of 64)")
    ap.add_argument("--only", default="",
                    help="regular expression; only pairs whose 'disk source -> output' matches "
                    "(e.g. 'raw -> qcow2$')")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs per tool, alternating which goes first; the fastest counts")
    ap.add_argument("--compressed-repeat", type=int, default=None,
                    help="runs per tool for compressed outputs (default: --repeat); they "
                    "take minutes each and their ratios are far from 1")
    ap.add_argument("--cold", action="store_true",
                    help="drop the source from the page cache before every timed run")
    ap.add_argument("--clean", action="store_true",
                    help="delete each disk's source files when its pairs are done")
    ap.add_argument("--ikon", default=os.environ.get("IKON_BIN", "target/release/ikon"),
                    help="the ikon binary (default: $IKON_BIN, else target/release/ikon)")
    a = ap.parse_args()

    def wanted(label):
        return not a.only or re.search(a.only, label) is not None

    if not shutil.which("qemu-img"):
        sys.exit("qemu-img is missing: run scripts/install-test-deps.sh")
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("/usr/bin/time is missing (apt-get install time); it measures peak memory")
    ikon = os.path.abspath(a.ikon)
    if not os.path.exists(ikon):
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "ikon-cli"], check=True)
    os.makedirs(a.dir, exist_ok=True)
    # (name, size label, bytes, maker, source formats, outputs)
    sources = [("realistic", f"{a.real_gib} GiB", a.real_gib << 30, make_realistic, FORMATS, OUTPUTS),
               ("random", f"{a.random_gib} GiB", a.random_gib << 30, make_random, FORMATS, OUTPUTS)]
    for kind in filter(None, a.kinds.split(",")):
        if kind not in KINDS:
            sys.exit(f"unknown kind {kind!r}; the kinds are {', '.join(KINDS)}")
        sources.append((kind, f"{a.kind_mib} MiB", a.kind_mib * MIB, make_kind(kind),
                        {"raw": FORMATS["raw"]}, {o: OUTPUTS[o] for o in COMPRESSED}))
    print(f"ikon {subprocess.run([ikon, '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"{subprocess.run(['qemu-img', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}, "
          f"{os.cpu_count()} CPUs")
    print()
    print(f"source in the page cache: {'no (--cold)' if a.cold else 'yes'}")
    print()
    print("| disk | source -> output | qemu-img s | ikon s | speed-up (qemu/ikon) | ikon vs cat | "
          "write limit s | ikon vs I/O | ikon MiB out | qemu MiB out | size ikon/qemu | "
          "ikon peak MiB | qemu peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst = None
    largest = None
    for name, size_label, size, make, formats, outputs in sources:
        if not any(wanted(f"{name} {s} -> {o}") for s in formats for o in outputs):
            continue
        raw = os.path.join(a.dir, f"{name}.raw")
        if not os.path.exists(raw) or os.path.getsize(raw) != size:
            make(raw, size)
        for sname, (qargs, _, qfmt) in formats.items():
            if not any(wanted(f"{name} {sname} -> {o}") for o in outputs):
                continue
            src = raw if sname == "raw" else os.path.join(a.dir, f"{name}.src.{sname}")
            if sname != "raw" and not os.path.exists(src):
                subprocess.run(["qemu-img", "convert", "-f", "raw", *qargs, raw, src], check=True)
            subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # warm the cache
            if a.cold:
                evict(src)
            cat_s, _ = timed(["cat", src], None, a.dir)
            for oname, (oq, oi, ofmt) in outputs.items():
                label = f"{sname} -> {oname}"
                if not wanted(f"{name} {label}"):
                    continue
                qout = os.path.join(a.dir, "out.qemu")
                iout = os.path.join(a.dir, "out.ikon")
                qcmd = ["qemu-img", "convert", "-f", qfmt, *oq, src, qout]
                icmd = [ikon, "img", "convert", "-q", "-f", qfmt, *oi, src, iout]
                qs = is_ = float("inf")
                qrss = irss = 0.0
                # Alternate which tool runs first (page cache, writeback of the previous
                # output) and keep each tool's fastest run.
                repeat = a.repeat
                if a.compressed_repeat is not None and oname in COMPRESSED:
                    repeat = a.compressed_repeat
                for r in range(max(1, repeat)):
                    order = [("q", qcmd, qout), ("i", icmd, iout)]
                    if r % 2:
                        order.reverse()
                    for tool, cmd, out in order:
                        if os.path.exists(out):
                            os.unlink(out)
                        os.sync()
                        if a.cold:
                            evict(src)
                        t, rss = timed(cmd, out, a.dir)
                        if tool == "q":
                            qs, qrss = min(qs, t), max(qrss, rss)
                        else:
                            is_, irss = min(is_, t), max(irss, rss)
                ratio = qs / is_
                vs_cat = f"{is_ / cat_s:.2f}x" if {sname, oname} <= {"raw", "qcow2"} else ""
                # Compressed outputs are bound by compression on the cores, not by I/O.
                io_cells = "| "
                size_cell = ""
                isize, qsize = os.path.getsize(iout), os.path.getsize(qout)
                if oname in COMPRESSED:
                    size_cell = f"{isize / qsize:.3f}"
                    if largest is None or isize / qsize > largest[0]:
                        largest = (isize / qsize, f"{name} {label}")
                else:
                    wl = write_limit(a.dir, os.stat(iout).st_blocks * 512)
                    io_cells = f"{wl:.2f} | {is_ / max(cat_s, wl):.2f}x"
                print(f"| {name} {size_label} | {label} | {qs:.2f} | {is_:.2f} | {ratio:.2f} | {vs_cat} | "
                      f"{io_cells} | {isize / MIB:.0f} | {qsize / MIB:.0f} | {size_cell} | "
                      f"{irss:.0f} | {qrss:.0f} |", flush=True)
                if worst is None or ratio < worst[0]:
                    worst = (ratio, f"{name} {label}")
                os.unlink(qout)
                os.unlink(iout)
            print(f"| {name} {size_label} | cat {sname} > /dev/null | | {cat_s:.2f} | | | | | | | | | |",
                  flush=True)
            if a.clean and sname != "raw":
                os.unlink(src)
        if a.clean:
            os.unlink(raw)
    if worst:
        print(f"\nslowest pair relative to qemu-img: {worst[1]} at {worst[0]:.2f}x")
    if largest:
        print(f"largest compressed output relative to qemu-img's: {largest[1]} at {largest[0]:.3f}x")


if __name__ == "__main__":
    main()
