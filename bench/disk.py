#!/usr/bin/env python3
"""What one durable write costs on this machine's disk: the floor under every group commit.

For each size, a loop of writes to a file already written (as SQLite's log is once it
restarts), each made durable one of two ways: `pwrite` then `fdatasync` (what SQLite does),
and one `pwrite` on a file opened `O_DIRECT | O_DSYNC` (what a journal of our own could do).
Prints the wall time and the CPU time (user + system) per durable write.

Usage: bench/disk.py [DIR, default .] [WRITES per measurement, default 2000]
"""
import mmap
import os
import resource
import sys
import time

directory = sys.argv[1] if len(sys.argv) > 1 else "."
writes = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
path = os.path.join(directory, "kairos-disk-probe.dat")
FILE_SIZE = 64 << 20


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(flags, size):
    # A file opened O_DSYNC makes each write durable by itself; any other needs its fdatasync.
    sync = not flags & os.O_DSYNC
    fd = os.open(path, os.O_RDWR | flags)
    # Page-aligned, as O_DIRECT requires.
    buffer = mmap.mmap(-1, size)
    buffer.write(b"x" * size)
    offset = 0
    wall, cpu = time.monotonic(), cpu_seconds()
    for _ in range(writes):
        os.pwrite(fd, buffer, offset)
        if sync:
            os.fdatasync(fd)
        offset = offset + size if offset + 2 * size <= FILE_SIZE else 0
    wall, cpu = time.monotonic() - wall, cpu_seconds() - cpu
    os.close(fd)
    return wall / writes * 1e6, cpu / writes * 1e6


with open(path, "wb") as f:
    f.write(b"\0" * FILE_SIZE)
    f.flush()
    os.fsync(f.fileno())
try:
    print(f"{'size':>8} {'pwrite+fdatasync':>24} {'O_DIRECT|O_DSYNC':>24}   (us of wall time / CPU per write)")
    for size in (4096, 16384, 40960):
        buffered = measure(0, size)
        direct = measure(os.O_DIRECT | os.O_DSYNC, size)
        print(f"{size // 1024:>5} KiB {buffered[0]:>13.0f} / {buffered[1]:<8.0f} {direct[0]:>13.0f} / {direct[1]:<8.0f}")
finally:
    os.remove(path)
