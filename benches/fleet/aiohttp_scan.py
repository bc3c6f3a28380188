#!/usr/bin/env python3
"""Baseline for the scanner benchmark: the same two fetches per host (homepage and
/cert/bazs.cert) and a regex for the ICP number, with aiohttp at a fixed concurrency."""
import asyncio
import re
import sys
import time

import aiohttp

ICP = re.compile(r"[\u4e00-\u9fff]ICP备\d{6,10}号(?:-\d+)?")


async def one(session, sem, host, port, stats):
    async with sem:
        try:
            async with session.get(f"http://{host}:{port}/") as r:
                body = await r.text(errors="replace")
                ICP.findall(body)
            async with session.get(f"http://{host}:{port}/cert/bazs.cert") as r:
                await r.read()
            stats["ok"] += 1
        except Exception:
            stats["err"] += 1


async def main(targets_file, port, concurrency, nameserver):
    hosts = [l.strip() for l in open(targets_file) if l.strip()]
    resolver = aiohttp.AsyncResolver(nameservers=[nameserver])
    conn = aiohttp.TCPConnector(limit=concurrency, force_close=True, resolver=resolver, use_dns_cache=False)
    sem = asyncio.Semaphore(concurrency)
    stats = {"ok": 0, "err": 0}
    t0 = time.monotonic()
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as s:
        await asyncio.gather(*(one(s, sem, h, port, stats) for h in hosts))
    dt = time.monotonic() - t0
    print(f"aiohttp: {len(hosts)} hosts in {dt:.2f}s = {len(hosts)/dt:.1f} sites/s ok={stats['ok']} err={stats['err']}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
