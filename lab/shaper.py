"""A userspace stand-in for `tc netem` (this kernel has no sch_netem): delay, loss and a rate cap.

It runs inside a router namespace on a TUN device. Policy routing steers the traffic to shape
through the TUN; the shaper holds each packet for the delay (queued behind the rate cap, or
dropped with the loss probability) and writes it back, and packets coming out of the TUN are
routed on by a separate table. Each direction passes once, so the RTT grows by 2 x delay.

`python -m lab.shaper --dev shp0 --delay-ms 20 --loss 0.01 --rate-kbit 20000 --seed 1`
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import os
import random
import select
import struct
import time
from dataclasses import dataclass

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
SHAPED_TABLE = 100


@dataclass(frozen=True)
class Shape:
    delay_ms: float = 0.0
    loss: float = 0.0  # probability in 0..1
    rate_kbit: int = 0  # 0: no cap


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def run(name: str, shape: Shape, seed: int) -> None:
    fd = open_tun(name)
    rng = random.Random(seed)
    queue: list[tuple[float, int, bytes]] = []
    link_free_at = 0.0
    counter = 0
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            os.write(fd, heapq.heappop(queue)[2])
        wait = max(0.0, queue[0][0] - now) if queue else 1.0
        readable, _, _ = select.select([fd], [], [], wait)
        if not readable:
            continue
        packet = os.read(fd, 65535)
        if shape.loss and rng.random() < shape.loss:
            continue
        now = time.monotonic()
        depart = now
        if shape.rate_kbit:
            # serialize behind what is already on the "wire"
            link_free_at = max(link_free_at, now) + len(packet) * 8 / (shape.rate_kbit * 1000)
            depart = link_free_at
        counter += 1
        heapq.heappush(queue, (depart + shape.delay_ms / 1000, counter, packet))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m lab.shaper", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dev", required=True)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--loss", type=float, default=0.0, help="drop probability, 0..1")
    p.add_argument("--rate-kbit", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    run(args.dev, Shape(args.delay_ms, args.loss, args.rate_kbit), args.seed)


if __name__ == "__main__":
    main()
