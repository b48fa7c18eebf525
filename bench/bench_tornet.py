"""Benchmark: start a private Tor network, fetch the demo market's onion once, stop; N times.

Prints min / median / max of each step: key generation, launch to client and service
bootstrapped, adding the onion service (until its descriptor is uploaded), the first GET
through Tor (wait_reachable), launch to first GET, and the whole run from start() to the end
of stop(). Each run is a fresh network in a fresh folder.

    .venv/bin/python bench/bench_tornet.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fixtures.server import FixtureServer
from fixtures.tornet import PrivateTorNetwork, onion_key

STEPS = ("keys", "bootstrap", "add_onion", "first_get", "launch_to_get", "start_to_stop")


def one_run(workdir: Path, market: FixtureServer) -> dict[str, float]:
    key, address = onion_key("bench-demo-market")
    started = time.monotonic()
    network = PrivateTorNetwork(workdir)
    try:
        network.start()
        added = time.monotonic()
        host = network.add_onion_service(int(market.url.rsplit(":", 1)[1]), key=key)
        add_onion = time.monotonic() - added
        assert host == address, (host, address)
        network.wait_reachable(f"http://{host}/")
    finally:
        network.stop()
    timings = dict(network.timings)
    timings["add_onion"] = add_onion
    timings["launch_to_get"] = timings["bootstrap"] + add_onion + timings["first_get"]
    timings["start_to_stop"] = time.monotonic() - started
    timings["attempts"] = len(list(workdir.glob("net-*")))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp, FixtureServer(market="demo", day=1) as market:
        for n in range(1, args.runs + 1):
            timings = one_run(Path(tmp) / f"run-{n}", market)
            runs.append(timings)
            print(
                f"run {n}: "
                + ", ".join(f"{step} {timings[step]:.1f} s" for step in STEPS)
                + f", start attempts {timings['attempts']:.0f}",
                flush=True,
            )
    print(f"\n{len(runs)} runs, seconds    min  median     max")
    for step in STEPS:
        values = [run[step] for run in runs]
        print(f"{step:<20} {min(values):7.1f} {statistics.median(values):7.1f} {max(values):7.1f}")


if __name__ == "__main__":
    main()
