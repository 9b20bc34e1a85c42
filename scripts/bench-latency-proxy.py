#!/usr/bin/env python3
"""A loopback TCP proxy that adds a one-way delay in each direction, for scripts/bench.sh.

    bench-latency-proxy.py --target 127.0.0.1:PORT [--delay-ms 25] [--window-mib 4]

Listens on 127.0.0.1 (a free port, printed as the first line on stdout) and forwards every
connection to the target, which must be on loopback. Every byte reaches the other side
DELAY ms after the proxy read it, in both directions, so a request and its answer take
2 x DELAY longer, as over a link with that one-way latency. Where the kernel has no netem
(`tc qdisc ... netem`), this stands in for it.

Bytes in flight per direction and connection are capped at a window (default 4 MiB): a byte
leaves the window DELAY ms after it was delivered (its acknowledgement on the way back), so one
connection carries at most WINDOW / (2 x DELAY) per second, as TCP with that window would.
There is no slow start and no loss, so short connections are cheaper here than on a real
link. Standard library only; nothing leaves 127.0.0.1.
"""

import argparse
import asyncio
import collections
import ipaddress
import sys

CHUNK = 256 * 1024


class Direction:
    """One direction of one connection: reads, holds each chunk DELAY, writes in order."""

    def __init__(self, reader, writer, delay, window):
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self.window = window
        self.in_flight = 0
        self.room = asyncio.Event()
        self.room.set()
        self.queue = collections.deque()
        self.ready = asyncio.Event()

    def release(self, n):
        self.in_flight -= n
        if self.in_flight < self.window:
            self.room.set()

    async def read_side(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self.room.wait()
                data = await self.reader.read(CHUNK)
                self.queue.append((loop.time() + self.delay, data))
                self.ready.set()
                if not data:
                    return
                self.in_flight += len(data)
                if self.in_flight >= self.window:
                    self.room.clear()
        except (ConnectionError, OSError):
            self.queue.append((loop.time(), None))
            self.ready.set()

    async def write_side(self):
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self.ready.clear()
                await self.ready.wait()
            due, data = self.queue.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:  # the reading side failed: reset this side too
                self.writer.transport.abort()
                return
            if not data:  # end of stream: half-close, as the sender did
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return
            self.writer.write(data)
            await self.writer.drain()
            loop.call_later(self.delay, self.release, len(data))


async def serve(client_reader, client_writer, target, delay, window):
    try:
        up_reader, up_writer = await asyncio.open_connection(*target)
    except OSError:
        client_writer.transport.abort()
        return
    ways = [
        Direction(client_reader, up_writer, delay, window),
        Direction(up_reader, client_writer, delay, window),
    ]
    tasks = [asyncio.create_task(t) for w in ways for t in (w.read_side(), w.write_side())]
    try:
        await asyncio.gather(*tasks)
    except (ConnectionError, OSError):
        pass
    finally:
        for t in tasks:
            t.cancel()
        for w in (client_writer, up_writer):
            w.close()


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", required=True, help="127.0.0.1:PORT")
    p.add_argument("--delay-ms", type=float, default=25.0)
    p.add_argument("--window-mib", type=float, default=4.0)
    a = p.parse_args()
    host, _, port = a.target.rpartition(":")
    if not ipaddress.ip_address(host.strip("[]")).is_loopback:
        sys.exit(f"bench-latency-proxy: {host} is not a loopback address")
    target = (host.strip("[]"), int(port))
    delay = a.delay_ms / 1000.0
    window = int(a.window_mib * 1024 * 1024)
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, target, delay, window), "127.0.0.1", 0
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
