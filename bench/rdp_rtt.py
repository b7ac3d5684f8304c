#!/usr/bin/env python3
"""A TCP relay that times an RDP client's input round trips (bench/rdp.sh).

    rdp_rtt.py LISTEN_PORT TARGET_PORT OUT_FILE

Listens on 127.0.0.1:LISTEN_PORT, passes one client's bytes to
127.0.0.1:TARGET_PORT unchanged (TLS and all), and times each round trip as
the client sees it: from a chunk the client sends after at least QUIET
seconds of silence both ways (a key the bench typed) to the first chunk that
comes back (the target's screen update). Put in front of the target
directly, and in front of rampart, it shows what rampart adds to a key's
round trip. On SIGTERM it writes the round trips, in milliseconds, one per
line, to OUT_FILE.
"""

import asyncio
import signal
import sys
import time

QUIET = 0.15

times = []
state = {"last": 0.0, "sent": None}


async def pipe(reader, writer, upward):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        now = time.monotonic()
        if upward:
            if state["sent"] is None and now - state["last"] >= QUIET:
                state["sent"] = now
        elif state["sent"] is not None:
            times.append((now - state["sent"]) * 1000)
            state["sent"] = None
        state["last"] = now
        writer.write(data)
        await writer.drain()
    writer.close()


async def serve(listen_port, target_port, out, stop):
    async def handle(c_reader, c_writer):
        t_reader, t_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(
            pipe(c_reader, t_writer, True),
            pipe(t_reader, c_writer, False),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await stop.wait()
    with open(out, "w") as f:
        f.writelines(f"{t:.3f}\n" for t in times)


def main():
    listen_port, target_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.run_until_complete(serve(listen_port, target_port, out, stop))


if __name__ == "__main__":
    main()
