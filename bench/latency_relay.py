#!/usr/bin/env python3
"""latency_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS: a TCP relay
that hands every chunk on DELAY_MS after it arrived, in order, in both
directions: a link with that one-way latency (bench/limits.sh puts one
between every pair of peers). SIGTERM stops it."""

import asyncio
import sys
import time


def split(hostport):
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((0, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def main():
    (lhost, lport), (thost, tport) = split(sys.argv[1]), split(sys.argv[2])
    delay = float(sys.argv[3]) / 1000.0

    async def serve(creader, cwriter):
        try:
            treader, twriter = await asyncio.open_connection(thost, tport)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, twriter, delay), pump(treader, cwriter, delay))

    server = await asyncio.start_server(serve, lhost, lport, reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
