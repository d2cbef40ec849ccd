#!/usr/bin/env python3
"""The WAN emulator's packet forwarder (run inside the router namespace).

This kernel has no netem, so the WAN is emulated in user space: the router namespace routes
every packet that arrives from a host's link into the TUN device of that host's region (policy
routing, set up by the harness); this program reads each IPv4 packet from the TUN devices, drops
it if its two hosts are partitioned or by the pair's loss share, and otherwise writes it back
after the one-way delay of the pair of regions. A packet written to a TUN device is received by
the router's kernel, which delivers it to the destination host's link (no rule sends packets
coming from a TUN device back into one). TCP, UDP and ICMP are carried alike.

Control: one JSON object per line on a unix socket, one JSON answer per line:
  {"op": "link", "a": "iad", "b": "lhr", "latency_ms": 40, "loss": 0.01}
  {"op": "partition", "hosts": ["198.18.1.10", ...]}   isolates that set from every other host
  {"op": "heal"}                                         removes every partition
  {"op": "stats"}                                        counters, links, per-link packets and losses
Standard library only (fcntl, asyncio): it must run on any fresh machine with python3.
"""
import argparse
import asyncio
import fcntl
import heapq
import json
import os
import random
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
PACKET_BYTES_MAX = 65535
# A router's buffer: past this many packets in flight, new ones are dropped (tail drop).
QUEUE_PACKETS_MAX = 200_000
CONTROL_LINE_BYTES_MAX = 65536


def pair_key(a, b):
    return f"{a}-{b}" if a < b else f"{b}-{a}"


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Wan:
    def __init__(self, config):
        # host address (4 raw bytes) -> region code
        self.region_of = {
            bytes(int(part) for part in address.split(".")): host["region"]
            for address, host in config["hosts"].items()
        }
        self.intra_s = config["intra_region_latency_ms"] / 1000
        self.links = {
            key: {"latency_ms": link["latency_ms"], "loss": link["loss"]}
            for key, link in config["links"].items()
        }
        self.partitions = []  # list of sets of raw addresses
        self.tuns = {region: open_tun(name) for region, name in config["tuns"].items()}
        self.any_tun = next(iter(self.tuns.values()))
        self.queue = []  # heap of (due, seq, fd, packet)
        self.seq = 0
        self.timer = None
        self.counters = {
            "forwarded": 0,
            "dropped_loss": 0,
            "dropped_partition": 0,
            "dropped_queue_full": 0,
            "dropped_write": 0,
            "not_ipv4": 0,
        }
        # Per pair of regions: packets that reached the loss draw, and those it dropped (so a
        # test can check the share dropped on one link, whatever else the WAN carries).
        self.pairs = {key: {"packets": 0, "dropped_loss": 0} for key in self.links}

    def delay_and_loss(self, src, dst):
        a, b = self.region_of.get(src), self.region_of.get(dst)
        if a is None or b is None:
            return 0.0, 0.0  # the operator's access link: no WAN in the way
        if a == b:
            return self.intra_s, 0.0
        key = pair_key(a, b)
        link = self.links[key]
        self.pairs[key]["packets"] += 1
        return link["latency_ms"] / 1000, link["loss"]

    def count_loss(self, src, dst):
        a, b = self.region_of.get(src), self.region_of.get(dst)
        if a is not None and b is not None and a != b:
            self.pairs[pair_key(a, b)]["dropped_loss"] += 1

    def partitioned(self, src, dst):
        if src not in self.region_of or dst not in self.region_of:
            return False  # the operator's access link is never cut
        return any((src in group) != (dst in group) for group in self.partitions)

    def on_readable(self, fd):
        loop = asyncio.get_running_loop()
        # Drain what is there, boundedly, so one busy device does not starve the others.
        for _ in range(256):
            try:
                packet = os.read(fd, PACKET_BYTES_MAX)
            except BlockingIOError:
                return
            if len(packet) < 20 or packet[0] >> 4 != 4:
                self.counters["not_ipv4"] += 1
                continue
            src, dst = packet[12:16], packet[16:20]
            if self.partitioned(src, dst):
                self.counters["dropped_partition"] += 1
                continue
            delay, loss = self.delay_and_loss(src, dst)
            if loss > 0 and random.random() < loss:
                self.counters["dropped_loss"] += 1
                self.count_loss(src, dst)
                continue
            if len(self.queue) >= QUEUE_PACKETS_MAX:
                self.counters["dropped_queue_full"] += 1
                continue
            out = self.tuns.get(self.region_of.get(dst), self.any_tun)
            if delay <= 0:
                self.write(out, packet)
                continue
            self.seq += 1
            heapq.heappush(self.queue, (time.monotonic() + delay, self.seq, out, packet))
            if self.queue[0][1] == self.seq:
                self.arm(loop)

    def arm(self, loop):
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        if self.queue:
            # loop.time() is time.monotonic() on Linux's default loop.
            self.timer = loop.call_at(self.queue[0][0], self.release)

    def release(self):
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            _, _, fd, packet = heapq.heappop(self.queue)
            self.write(fd, packet)
        self.timer = None
        self.arm(asyncio.get_running_loop())

    def write(self, fd, packet):
        try:
            os.write(fd, packet)
            self.counters["forwarded"] += 1
        except OSError:
            self.counters["dropped_write"] += 1

    def control(self, request):
        op = request.get("op")
        if op == "link":
            key = pair_key(str(request.get("a")), str(request.get("b")))
            if key not in self.links:
                return {"error": f"no link between regions {request.get('a')} and {request.get('b')}"}
            latency, loss = request.get("latency_ms"), request.get("loss")
            if latency is not None and not (isinstance(latency, (int, float)) and 0 <= latency <= 60000):
                return {"error": "latency_ms: a number of ms from 0 to 60000"}
            if loss is not None and not (isinstance(loss, (int, float)) and 0 <= loss <= 1):
                return {"error": "loss: a share from 0 to 1"}
            if latency is not None:
                self.links[key]["latency_ms"] = latency
            if loss is not None:
                self.links[key]["loss"] = loss
            return {"ok": True, "link": {key: self.links[key]}}
        if op == "partition":
            hosts = request.get("hosts")
            if not isinstance(hosts, list) or not hosts:
                return {"error": "hosts: a non-empty list of host addresses"}
            group = set()
            for address in hosts:
                raw = bytes(int(part) for part in str(address).split("."))
                if raw not in self.region_of:
                    return {"error": f"hosts: {address} is not a host of this WAN"}
                group.add(raw)
            self.partitions.append(group)
            return {"ok": True, "partitions": len(self.partitions)}
        if op == "heal":
            self.partitions = []
            return {"ok": True}
        if op == "stats":
            return {
                "ok": True,
                "counters": self.counters,
                "queued": len(self.queue),
                "partitions": [sorted(".".join(map(str, a)) for a in g) for g in self.partitions],
                "links": self.links,
                "pairs": self.pairs,
            }
        return {"error": f"op: unknown operation {op!r} (link, partition, heal, stats)"}


async def serve_control(wan, path):
    async def on_client(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    request = json.loads(line)
                    answer = wan.control(request) if isinstance(request, dict) else {"error": "a JSON object"}
                except (ValueError, OverflowError) as error:
                    answer = {"error": f"bad request: {error}"}
                writer.write((json.dumps(answer) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_unix_server(on_client, path=path, limit=CONTROL_LINE_BYTES_MAX)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--control", required=True)
    args = parser.parse_args()
    with open(args.config) as file:
        wan = Wan(json.load(file))
    loop = asyncio.get_running_loop()
    for fd in wan.tuns.values():
        loop.add_reader(fd, wan.on_readable, fd)
    if os.path.exists(args.control):
        os.unlink(args.control)
    server = await serve_control(wan, args.control)
    stopped = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stopped.done() or stopped.set_result(None))
    # Also stop when the harness is gone (its pipe on stdin closes).
    loop.add_reader(sys.stdin.fileno(), lambda: os.read(sys.stdin.fileno(), 4096) or (stopped.done() or stopped.set_result(None)))
    print(json.dumps({"event": "ready", "tuns": list(wan.tuns)}), flush=True)
    await stopped
    server.close()
    os.unlink(args.control)


if __name__ == "__main__":
    asyncio.run(main())
