#!/usr/bin/env python3
"""Keystroke echo round-trip through an interactive SSH session.

Used by bench/ssh.sh. Runs the given ssh command (which must ask for a pty
with -tt and open a login shell) on a local pseudo-terminal, the way a person
at a terminal would: ssh puts that terminal in raw mode and forwards each byte
as it is typed. Once the remote shell is up, it types one line that turns the
remote terminal raw (no echo by the line discipline) and runs
`dd bs=1 count=N`, which writes every byte back as soon as it reads it (a
`cat` that stops by itself, so the session ends cleanly with `exit`). Then it
sends one character at a time and waits for that character to come back.

Prints one line on stdout:
    ok COUNT MEDIAN_MS P99_MS MEAN_MS MAX_MS
or  fail REASON
and, on failure, the tail of the session transcript on stderr.
Standard library only.
"""

import argparse
import fcntl
import math
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time

MARKER = b"ECHO-READY"


class Session:
    """An ssh child on a pty; reads are accumulated into a transcript."""

    def __init__(self, argv):
        master, slave = os.openpty()
        # A real terminal has a size; ssh forwards it in the pty request.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = dict(os.environ, TERM="xterm")
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.fd = master
        self.transcript = bytearray()

    def read(self, timeout):
        """Bytes available within `timeout` seconds (b"" if none, None at EOF)."""
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the pty
            return None
        if not data:
            return None
        self.transcript += data
        del self.transcript[:-8192]
        return data

    def wait_for(self, needle, timeout):
        """Read until `needle` has been seen; False on timeout or EOF."""
        deadline = time.monotonic() + timeout
        seen = bytearray()
        while True:
            data = self.read(deadline - time.monotonic())
            if data is None:
                return False
            seen += data
            if needle in seen:
                return True
            if time.monotonic() >= deadline:
                return False

    def settle(self, first_timeout, quiet):
        """Wait for the first output (the shell's greeting and prompt), then
        until the session has been quiet for `quiet` seconds. Returns None
        when settled, else why not."""
        first = self.read(first_timeout)
        if first is None:
            return "session ended before a shell prompt"
        if not first:
            return f"no shell prompt within {first_timeout} s"
        while True:
            data = self.read(quiet)
            if data is None:
                return "session ended before a shell prompt"
            if not data:
                return None

    def write(self, data):
        os.write(self.fd, data)

    def close(self, timeout):
        """Wait for ssh to exit on its own, else kill its process group."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            self.read(0.05)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        os.close(self.fd)
        return self.proc.returncode


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000, help="measured keystrokes")
    ap.add_argument("--warmup", type=int, default=20, help="keystrokes not counted")
    ap.add_argument("--gap-ms", type=float, default=2.0, help="pause between keystrokes")
    ap.add_argument("--key-timeout", type=float, default=2.0, help="max wait for one echo")
    ap.add_argument("--budget", type=float, default=90.0, help="max seconds for the whole run")
    ap.add_argument("argv", nargs=argparse.REMAINDER, help="-- ssh command")
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        ap.error("no ssh command given")

    started = time.monotonic()
    s = Session(argv)
    total = args.warmup + args.count

    def fail(reason):
        print(f"fail {reason}")
        tail = bytes(s.transcript[-1500:]).decode("utf-8", "replace")
        print(f"--- session transcript (tail) ---\n{tail}\n---", file=sys.stderr)
        s.close(0)
        sys.exit(1)

    # The shell must be up before we type: keys sent while the session is
    # still being set up would race with the login.
    problem = s.settle(first_timeout=20, quiet=0.5)
    if problem:
        fail(problem)
    # RE''ADY: the echoed command line itself must not contain the marker.
    marker = MARKER.decode()
    setup = (
        f"stty raw -echo; echo {marker[:4]}''{marker[4:]}; "
        f"dd bs=1 count={total} 2>/dev/null; stty sane; exit\r"
    )
    s.write(setup.encode())
    if not s.wait_for(MARKER, 10):
        fail("remote setup line did not answer within 10 s")
    # Let the marker's trailing newline and prompt noise drain.
    while s.read(0.2):
        pass

    letters = b"abcdefghijklmnopqrstuvwxyz"
    samples = []
    for i in range(total):
        if time.monotonic() - started > args.budget:
            fail(f"time budget of {args.budget:.0f} s spent after {i} keystrokes")
        key = letters[i % len(letters) : i % len(letters) + 1]
        t0 = time.perf_counter_ns()
        s.write(key)
        deadline = time.monotonic() + args.key_timeout
        got = bytearray()
        while key not in got:
            data = s.read(deadline - time.monotonic())
            if data is None:
                fail(f"session ended after {i} keystrokes")
            got += data
            if key not in got and time.monotonic() >= deadline:
                fail(f"no echo within {args.key_timeout} s for keystroke {i}")
        t1 = time.perf_counter_ns()
        if i >= args.warmup:
            samples.append((t1 - t0) / 1e6)
        if args.gap_ms > 0:
            time.sleep(args.gap_ms / 1000)

    code = s.close(10)
    samples.sort()
    mean = sum(samples) / len(samples)
    print(
        f"ok {len(samples)} {percentile(samples, 50):.3f} {percentile(samples, 99):.3f} "
        f"{mean:.3f} {samples[-1]:.3f}"
    )
    if code != 0:
        print(f"note: ssh exited with status {code} after the measurement", file=sys.stderr)


if __name__ == "__main__":
    main()
