#!/usr/bin/env python3
"""Conversion benchmark: Ikon against qemu-img in the same run, with `cat` as the read limit.

Builds a realistic disk (default 4 GiB: about half data — real files from /usr, compressible
like an OS disk — and half zeros, partly holes and partly written zeros) and a dense random
disk (default 2 GiB). For every pair among raw, qcow2, vhd, vmdk monolithicSparse and vmdk
streamOptimized (plus compressed qcow2 output) it writes the source with qemu-img, then times
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

Usage: bench-convert.py [--dir DIR] [--real-gib 4] [--random-gib 2] [--only REGEX]
                        [--repeat N] [--compressed-repeat N] [--clean] [--cold] [--ikon PATH]

A disk none of whose pairs match --only is not built. --clean deletes a disk's source files
once its pairs are done (the two disks with all their sources take about 20 GiB).
"""
import argparse
import mmap
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

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


def make_realistic(path, gib):
    """Half data (real /usr files, a tar stream repeated), half zeros (holes and written)."""
    size = gib << 30
    chunk = 64 * MIB
    tarpath = path + ".seed.tar"
    with tarfile.open(tarpath, "w") as tf:
        total = 0
        for root in ("/usr/lib", "/usr/share", "/usr/bin"):
            for dp, _, files in os.walk(root):
                for f in files:
                    fp = os.path.join(dp, f)
                    try:
                        if os.path.islink(fp) or not os.path.isfile(fp):
                            continue
                        tf.add(fp)
                        total += os.path.getsize(fp)
                    except (OSError, tarfile.TarError):
                        continue
                    if total > 512 * MIB:
                        break
                if total > 512 * MIB:
                    break
    seed = open(tarpath, "rb").read()
    os.unlink(tarpath)
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


def make_random(path, gib):
    with open(path, "wb") as f:
        for _ in range(gib * 16):
            f.write(os.urandom(64 * MIB))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/ikon-bench")
    ap.add_argument("--real-gib", type=int, default=4)
    ap.add_argument("--random-gib", type=int, default=2)
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
    sources = [("realistic", a.real_gib, make_realistic), ("random", a.random_gib, make_random)]
    print(f"ikon {subprocess.run([ikon, '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"{subprocess.run(['qemu-img', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}, "
          f"{os.cpu_count()} CPUs")
    print()
    print(f"source in the page cache: {'no (--cold)' if a.cold else 'yes'}")
    print()
    print("| disk | source -> output | qemu-img s | ikon s | speed-up (qemu/ikon) | ikon vs cat | "
          "write limit s | ikon vs I/O | ikon MiB out | qemu MiB out | ikon peak MiB | qemu peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst = None
    for name, gib, make in sources:
        if not any(wanted(f"{name} {s} -> {o}") for s in FORMATS for o in OUTPUTS):
            continue
        raw = os.path.join(a.dir, f"{name}.raw")
        if not os.path.exists(raw) or os.path.getsize(raw) != gib << 30:
            make(raw, gib)
        for sname, (qargs, _, qfmt) in FORMATS.items():
            if not any(wanted(f"{name} {sname} -> {o}") for o in OUTPUTS):
                continue
            src = raw if sname == "raw" else os.path.join(a.dir, f"{name}.src.{sname}")
            if sname != "raw" and not os.path.exists(src):
                subprocess.run(["qemu-img", "convert", "-f", "raw", *qargs, raw, src], check=True)
            subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # warm the cache
            if a.cold:
                evict(src)
            cat_s, _ = timed(["cat", src], None, a.dir)
            for oname, (oq, oi, ofmt) in OUTPUTS.items():
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
                if a.compressed_repeat is not None and oname in ("vmdk-stream", "qcow2-c"):
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
                if oname not in ("vmdk-stream", "qcow2-c"):
                    wl = write_limit(a.dir, os.stat(iout).st_blocks * 512)
                    io_cells = f"{wl:.2f} | {is_ / max(cat_s, wl):.2f}x"
                print(f"| {name} {gib} GiB | {label} | {qs:.2f} | {is_:.2f} | {ratio:.2f} | {vs_cat} | "
                      f"{io_cells} | {os.path.getsize(iout) / MIB:.0f} | {os.path.getsize(qout) / MIB:.0f} | "
                      f"{irss:.0f} | {qrss:.0f} |", flush=True)
                if worst is None or ratio < worst[0]:
                    worst = (ratio, f"{name} {label}")
                os.unlink(qout)
                os.unlink(iout)
            print(f"| {name} {gib} GiB | cat {sname} > /dev/null | | {cat_s:.2f} | | | | | | | | |",
                  flush=True)
            if a.clean and sname != "raw":
                os.unlink(src)
        if a.clean:
            os.unlink(raw)
    if worst:
        print(f"\nslowest pair relative to qemu-img: {worst[1]} at {worst[0]:.2f}x")


if __name__ == "__main__":
    main()
