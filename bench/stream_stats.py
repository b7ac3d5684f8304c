#!/usr/bin/env python3
"""Run one streaming ssh command and time what its person sees.

    stream_stats.py [--timeout SECONDS] -- ssh ARGS...

Used by bench/ssh.sh for every throughput run and for the streaming session
of the "second person" test. The command runs with stdin from /dev/null and
its stdout read here (counted, not kept) in its own session, so a timeout
ends ssh and any ProxyJump helper it started. Prints one line on stdout:

    STATUS BYTES T_START T_FIRST T_LAST T_EXIT

STATUS is ssh's exit status (124 when the timeout ended it, the way
timeout(1) says so); BYTES the bytes read from its stdout; the times are Unix
epoch seconds (the same clock as `date +%s.%N` on a loopback target): the
start of the command, its first and last byte of output (T_START when there
was none), and its exit. T_EXIT - T_LAST is how long the person waited for
the prompt after the last byte: a bastion that finishes indexing or writing
before it closes the channel shows up there. stderr is passed through.
Standard library only.
"""

import argparse
import fcntl
import os
import select
import signal
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=60.0, help="end ssh after this many seconds")
    ap.add_argument("argv", nargs=argparse.REMAINDER, help="-- ssh command")
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        ap.error("no command given")

    t_start = time.time()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
    fd = proc.stdout.fileno()
    try:  # fewer, larger reads: this reader should cost little next to ssh
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (AttributeError, OSError):
        pass
    deadline = time.monotonic() + args.timeout
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total = 0
    t_first = t_last = None
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        n = proc.stdout.raw.readinto(view)
        if not n:
            break
        t_last = time.time()
        if t_first is None:
            t_first = t_last
        total += n
    if not timed_out:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out:
        for sig, grace in ((signal.SIGTERM, 2), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
    t_exit = time.time()
    status = 124 if timed_out else proc.returncode
    if status is not None and status < 0:  # killed by a signal, as a shell says it
        status = 128 - status
    t_first = t_first or t_start
    t_last = t_last or t_start
    print(f"{status} {total} {t_start:.6f} {t_first:.6f} {t_last:.6f} {t_exit:.6f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
