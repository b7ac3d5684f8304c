#!/usr/bin/env python3
"""Write a syslog-like text file with ANSI colours, for bench/ssh.sh.

    gen_syslog.py BYTES PATH

Text is what people stream through a bastion (`cat` of a log, journalctl,
dmesg, build output), and text is what a screen model and a search index
work hardest on, so the benchmark streams this rather than /dev/zero. The
lines look like a colourised journal: an ISO timestamp (dim), a hostname,
`program[pid]:`, a level in its colour, then a message from one of a few
dozen templates filled with IPs, users, paths, ports, durations, hex ids and
HTTP requests; about 1 line in 40 is long (a JSON payload or a stack trace
line, 300-2000 characters). Timestamps advance, so no line repeats.

The file is exactly BYTES long (the last line is cut to fit) and the same
for the same BYTES (fixed seed), so runs and binaries compare on equal
input. Standard library only; about 10 s for 200 MB.
"""

import random
import sys

RESET = "\x1b[0m"
DIM = "\x1b[2m"
BOLD = "\x1b[1m"
LEVELS = [
    ("\x1b[32m", "INFO"),
    ("\x1b[32m", "INFO"),
    ("\x1b[32m", "INFO"),
    ("\x1b[36m", "DEBUG"),
    ("\x1b[33m", "WARN"),
    ("\x1b[31m", "ERROR"),
    ("\x1b[1;31m", "CRIT"),
    ("\x1b[34m", "NOTICE"),
]
HOSTS = [f"{p}-{n:02d}" for p in ("web", "db", "cache", "api", "worker", "edge", "build") for n in range(1, 13)]
PROGRAMS = [
    "sshd", "nginx", "postgres", "kernel", "systemd", "cron", "dockerd", "containerd", "kubelet",
    "sudo", "redis-server", "haproxy", "rsyslogd", "app-server", "node", "java", "gunicorn", "envoy",
]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "deploy", "www-data", "postgres", "root"]
PATHS = [
    "/var/log/nginx/access.log", "/etc/ssl/private/server.key", "/srv/app/releases/20261204/config.yml",
    "/home/{u}/.ssh/authorized_keys", "/var/lib/postgresql/15/main/pg_wal", "/opt/app/bin/worker",
    "/tmp/upload-{h}.part", "/usr/lib/systemd/system/{p}.service", "/var/cache/apt/archives/partial",
    "/data/exports/{u}/report-{n}.csv", "/proc/{n}/status", "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{h}",
]
URLS = [
    "/api/v1/users/{n}", "/api/v1/orders?page={m}&per_page=50", "/static/js/app.{h}.js", "/healthz",
    "/login?next=%2Fdashboard", "/api/v2/search?q={u}&sort=desc", "/metrics", "/assets/img/logo-{m}.png",
]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
STATUS = ["200", "200", "200", "201", "204", "301", "304", "400", "401", "403", "404", "500", "502", "503"]
WORDS = (
    "connection reset timeout retry upstream backend request response cache miss hit queue worker job "
    "scheduled finished failed started session token expired refreshed checkpoint vacuum replica lag "
    "handshake certificate rotated config reload signal received shutdown graceful pool exhausted"
).split()

TEMPLATES = [
    "Accepted publickey for {u} from {ip} port {port} ssh2: ED25519 SHA256:{b64}",
    "Failed password for invalid user {u} from {ip} port {port} ssh2",
    "pam_unix(sshd:session): session opened for user {u}(uid={uid}) by (uid=0)",
    'Disconnected from user {u} {ip} port {port}',
    '{ip} - {u} [{clock}] "{meth} {url} HTTP/1.1" {status} {size} "-" "Mozilla/5.0 (X11; Linux x86_64) rv:{m}.0"',
    "upstream timed out (110: Connection timed out) while reading response header from upstream, client: {ip}, server: {host}, request: \"{meth} {url} HTTP/1.1\"",
    "checkpoint complete: wrote {n} buffers ({pct}%); {m} WAL file(s) added, 0 removed; write={ms} s, sync=0.{m} s",
    "duration: {ms} ms  statement: SELECT id, name, email FROM users WHERE org_id = {n} ORDER BY created_at DESC LIMIT 50",
    "[{kt}] EXT4-fs (nvme0n1p{m}): mounted filesystem with ordered data mode. Quota mode: none.",
    "[{kt}] TCP: request_sock_TCP: Possible SYN flooding on port {port}. Sending cookies.",
    "[{kt}] oom-kill:constraint=CONSTRAINT_MEMCG,task={p},pid={pid},uid={uid}",
    "Started {p}.service - {w} {w2} daemon.",
    "{p}.service: Main process exited, code=exited, status={m}/FAILURE",
    "({u}) CMD (/usr/local/bin/backup --target {path} --keep {m})",
    "{u} : TTY=pts/{m} ; PWD=/home/{u} ; USER=root ; COMMAND=/usr/bin/systemctl restart {p}",
    "container {h} exited with code {m} after {ms}ms",
    "Pod {u}-{h8} in namespace prod: Back-off restarting failed container (restart count {m})",
    "{w} {w2}: {n} items in {ms} ms (p99 {ms2} ms), queue depth {m}",
    "opened {path} for writing ({size} bytes)",
    "cache {w}: key=session:{h} ttl={n}s size={size}",
    "health check {status} for backend {host}:{port} ({ms} ms)",
    "Server listening on {ip} port {port}.",
    "user {u} logged in from {ip} via {w} (mfa ok)",
    "rotating {path}: {size} bytes, {n} lines",
]
LONG_TEMPLATES = [
    'request body {{"user":"{u}","org":{n},"items":[{items}],"trace":"{h}","note":"{words}"}}',
    "Exception in thread \"worker-{m}\" java.lang.IllegalStateException: {words} at {frames}",
    "query plan: {words} -> Seq Scan on events (cost=0.00..{n}.00 rows={size}) Filter: ({words2})",
]


def long_line(rnd, fields):
    t = rnd.choice(LONG_TEMPLATES)
    k = rnd.randrange(10, 120)
    return t.format(
        items=",".join(f'{{"sku":"{rnd.getrandbits(40):010x}","qty":{rnd.randrange(1, 99)}}}' for _ in range(k // 4)),
        words=" ".join(rnd.choices(WORDS, k=k)),
        words2=" AND ".join(f"{rnd.choice(WORDS)} = {rnd.randrange(1000)}" for _ in range(k // 3)),
        frames=" at ".join(
            f"com.example.{rnd.choice(WORDS)}.{rnd.choice(WORDS).title()}Service.{rnd.choice(WORDS)}({rnd.choice(WORDS).title()}.java:{rnd.randrange(20, 900)})"
            for _ in range(k // 6 + 1)
        ),
        **fields,
    )


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    total = int(sys.argv[1])
    rnd = random.Random(14)
    start = 1_764_892_800  # 2025-12-05T00:00:00Z
    t = float(start)
    written = 0
    buf = []
    buffered = 0
    with open(sys.argv[2], "w", encoding="ascii", newline="\n") as out:
        while written + buffered < total:
            t += rnd.random() * 0.02
            secs = int(t)
            # time.strftime is slow at this volume; the calendar fields of a
            # benchmark log need only look right.
            day = 5 + (secs - start) // 86400
            clock = f"{secs // 3600 % 24:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
            stamp = f"2025-12-{day:02d}T{clock}.{int((t % 1) * 1e6):06d}Z"
            u = rnd.choice(USERS)
            p = rnd.choice(PROGRAMS)
            h = f"{rnd.getrandbits(64):016x}"
            fields = dict(
                u=u,
                p=p,
                h=h,
                h8=h[:8],
                ip=f"{rnd.choice((10, 172, 192, 203))}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                port=rnd.randrange(1024, 65535),
                uid=rnd.randrange(1000, 1100),
                pid=rnd.randrange(300, 99999),
                n=rnd.randrange(1, 100000),
                m=rnd.randrange(0, 20),
                ms=f"{rnd.random() * 900:.3f}",
                ms2=f"{rnd.random() * 3000:.1f}",
                pct=f"{rnd.random() * 100:.1f}",
                size=rnd.randrange(100, 10_000_000),
                kt=f"{secs % 1_000_000:>6}.{rnd.randrange(1_000_000):06d}",
                clock=f"05/Dec/2025:{clock} +0000",
                status=rnd.choice(STATUS),
                meth=rnd.choice(METHODS),
                w=rnd.choice(WORDS),
                w2=rnd.choice(WORDS),
                b64=f"{rnd.getrandbits(256):064x}"[:43],
                host=rnd.choice(HOSTS),
            )
            fields["path"] = rnd.choice(PATHS).format(**fields)
            fields["url"] = rnd.choice(URLS).format(**fields)
            if rnd.randrange(40) == 0:
                msg = long_line(rnd, fields)
            else:
                msg = rnd.choice(TEMPLATES).format(**fields)
            colour, level = rnd.choice(LEVELS)
            line = (
                f"{DIM}{stamp}{RESET} {BOLD}{rnd.choice(HOSTS)}{RESET} {p}[{fields['pid']}]: "
                f"{colour}{level:<6}{RESET} {msg}\n"
            )
            buf.append(line)
            buffered += len(line)
            if buffered >= 1 << 20:
                chunk = "".join(buf)
                out.write(chunk)
                written += len(chunk)
                buf, buffered = [], 0
        chunk = "".join(buf)[: total - written]
        # Do not end on a cut line: the last line ends with a newline.
        if chunk and not chunk.endswith("\n"):
            chunk = chunk[:-1] + "\n"
        out.write(chunk)


if __name__ == "__main__":
    main()
