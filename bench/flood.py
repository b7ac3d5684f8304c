#!/usr/bin/env python3
"""Password flood against an SSH server, for bench/flood.sh (issue 13, item 4).

    python3 bench/flood.py HOST PORT --source 127.0.0.2 --clients 60 --seconds 20

Starts CLIENTS paramiko clients (threads, spread over a few processes so the
GIL does not cap the flood at one core), each connecting from SOURCE and
trying wrong passwords for random user names for SECONDS: one attempt per
connection (paramiko's Transport cannot make a second password attempt on
a connection to a russh server: it waits for an answer that never comes),
then a new connection. Prints one line of counts at the end:

    attempts=N rejected=N connections=N refused_connections=N errors=N

Needs paramiko (pip install paramiko). Nothing here is a real password.
"""

import argparse
import logging
import multiprocessing
import os
import random
import socket
import string
import sys
import threading
import time

import paramiko

logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def name():
    return "spray-" + "".join(random.choices(string.ascii_lowercase, k=8))


def client(args, deadline, counts, lock):
    local = dict.fromkeys(counts, 0)
    while time.monotonic() < deadline:
        try:
            sock = socket.create_connection(
                (args.host, args.port), timeout=10, source_address=(args.source, 0)
            )
        except OSError:
            local["refused_connections"] += 1
            time.sleep(0.05)
            continue
        transport = None
        try:
            transport = paramiko.Transport(sock)
            transport.banner_timeout = 10
            transport.auth_timeout = 30
            transport.start_client(timeout=10)
            local["connections"] += 1
            local["attempts"] += 1
            try:
                transport.auth_password(name(), "Winter2026!" + str(random.randint(0, 9999)))
            except paramiko.AuthenticationException:
                local["rejected"] += 1
        except (paramiko.SSHException, OSError, EOFError):
            # The server hung up (a cap) or the handshake failed: reconnect.
            local["errors"] += 1
        finally:
            if transport is not None:
                transport.close()
            sock.close()
    with lock:
        for k, v in local.items():
            counts[k] += v


def process(args, threads, deadline, queue):
    counts = dict.fromkeys(
        ["attempts", "rejected", "connections", "refused_connections", "errors"], 0
    )
    lock = threading.Lock()
    workers = [
        threading.Thread(target=client, args=(args, deadline, counts, lock), daemon=True)
        for _ in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=max(0.0, deadline - time.monotonic()) + 40)
    queue.put(counts)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--source", default="127.0.0.2")
    p.add_argument("--clients", type=int, default=60)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    args = p.parse_args()
    if not 1 <= args.clients <= 1000 or not 0 < args.seconds <= 600:
        sys.exit("clients must be 1..1000 and seconds 0..600")
    deadline = time.monotonic() + args.seconds
    procs = max(1, min(args.processes, args.clients))
    queue = multiprocessing.Queue()
    children = []
    for i in range(procs):
        threads = args.clients // procs + (1 if i < args.clients % procs else 0)
        c = multiprocessing.Process(target=process, args=(args, threads, deadline, queue))
        c.start()
        children.append(c)
    total = {}
    for _ in children:
        for k, v in queue.get(timeout=args.seconds + 120).items():
            total[k] = total.get(k, 0) + v
    for c in children:
        c.join(timeout=10)
    print(" ".join(f"{k}={v}" for k, v in total.items()), flush=True)


if __name__ == "__main__":
    main()
