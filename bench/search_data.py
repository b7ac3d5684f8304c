#!/usr/bin/env python3
"""Recordings for bench/search.sh: GB gigabytes of terminal sessions with a
pty, as rampart writes them (asciicast v2 casts under the recording dir and
their session rows), of varied syslog-like text with colours.

    search_data.py DATA_DIR GB SESSIONS

Each session holds a token of its own, NEEDLE-<n>-<hex>, once, at a random
place; session 0 also holds RARE-TOKEN-7f3a9c (found in one place only).
Event payloads come from a pool of distinct 4 KiB chunks so that writing is
fast, yet every block the index files has varied text. Prints one line per
session: its id and the offset of its needle.
"""
import datetime
import json
import os
import random
import sqlite3
import sys
import uuid

HOSTS = ["web%02d" % i for i in range(1, 60)] + ["db%02d" % i for i in range(1, 12)]
PROGS = ["sshd", "systemd", "kernel", "cron", "nginx", "postgres", "dockerd", "kubelet", "sudo"]
LEVELS = [("\x1b[32m", "INFO"), ("\x1b[33m", "WARN"), ("\x1b[31m", "ERROR"), ("\x1b[36m", "DEBUG")]
WORDS = ("connection accepted closed from user session opened for root by uid failed password "
         "invalid request GET POST /api/v1/items /var/log/syslog timeout retry upstream backend "
         "pool worker started stopped reload config cache miss hit deploy rollout pod node "
         "volume mount disk quota exceeded latency p99 queue depth").split()


def chunk(rng, size=4096):
    out, n, t = [], 0, rng.randrange(86400)
    while n < size:
        t += rng.randrange(3)
        c, l = LEVELS[rng.randrange(4)]
        msg = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
        line = "Dec  5 %02d:%02d:%02d %s %s[%d]: %s%s\x1b[0m %s src=10.%d.%d.%d id=%08x\r\n" % (
            (t // 3600) % 24, (t // 60) % 60, t % 60, rng.choice(HOSTS), rng.choice(PROGS),
            rng.randrange(1, 65535), c, l, msg, rng.randrange(256), rng.randrange(256),
            rng.randrange(256), rng.getrandbits(32))
        out.append(line)
        n += len(line)
    return "".join(out)


def main():
    data_dir, gb, sessions = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(14)
    pool = [json.dumps(chunk(rng)) for _ in range(4096)]
    per_session = int(gb * 1e9 / sessions)
    db = sqlite3.connect(os.path.join(data_dir, "rampart.db"))
    start = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
    for n in range(sessions):
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        began = start + datetime.timedelta(minutes=10 * n)
        rel = began.strftime("%Y/%m/%d") + "/" + sid + ".cast"
        path = os.path.join(data_dir, "recordings", rel)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        needle = "NEEDLE-%d-%08x" % (n, rng.getrandbits(32))
        plant_at = rng.randrange(per_session)
        header = {"version": 2, "width": 120, "height": 40, "timestamp": int(began.timestamp()),
                  "env": {"TERM": "xterm-256color", "SHELL": "/bin/bash"},
                  "rampart": {"session": sid, "user": "u%d" % (n % 17), "asset": "web%02d" % (n % 40),
                              "account": "root", "protocol": "ssh", "kind": "shell"}}
        written, t, planted = 0, 0.0, False
        with open(path, "w") as f:
            f.write(json.dumps(header) + "\n")
            while written < per_session:
                t += 0.001
                data = pool[rng.randrange(len(pool))]
                if not planted and written >= plant_at:
                    extra = "kernel: %s seen here\r\n" % needle
                    if n == 0:
                        extra += "kernel: RARE-TOKEN-7f3a9c seen here\r\n"
                    data = data[:-1] + extra.replace("\r", "\\r").replace("\n", "\\n") + '"'
                    planted = True
                f.write('[%.6f,"o",%s]\n' % (t, data))
                written += 4096
        ended = began + datetime.timedelta(seconds=t + 1)
        ts = lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        db.execute(
            "INSERT INTO sessions (id, user_name, asset_name, account, protocol, kind, source,"
            " started_at, ended_at, status, reason, recording) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (sid, header["rampart"]["user"], header["rampart"]["asset"], "root", "ssh", "shell",
             "127.0.0.1", ts(began), ts(ended), "closed", "client closed", rel))
        print(sid, needle, flush=True)
    db.commit()


if __name__ == "__main__":
    main()
