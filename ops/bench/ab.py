"""Worker CPU per request of two versions of the relay, side by side: is a
change faster? Prints; asserts nothing. About 2 minutes with the defaults.

    python3 ops/bench/ab.py BASE [--surface chat|Responses|Responses-stored] [-c 16]
                                 [--base-surface SURFACE] [--seconds 3] [--rounds 10]
                                 [--database-url URL] [--tracing on]

A is the commit BASE (checked out in a temporary git worktree), B this
checkout as it is, uncommitted changes included. Both run as compare.py runs
the relay (one gevent worker on core 0, keys on) in front of one fast
upstream; wrk loads one, then the other, in alternating order, `--rounds`
times. Each cell gives the worker's CPU per request; each round the ratio
B/A, and the p50 latency of each (wrk's). On a shared machine one cell's CPU
per request moves 10-20% with the machine, and two cells seconds apart move
together: the median of the rounds' ratios is the answer, good to a few
percent with 10 rounds. Responses-stored leaves `store` to its default (true).

--tracing on runs B with OpenTelemetry tracing on (every request sampled),
exporting to a local OTLP sink (otlp_sink.py) on the load core; A keeps it
off. `ab.py HEAD --tracing on` is then the price of tracing, and `ab.py
BASE` from before tracing existed shows what tracing off costs.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

SURFACES = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Say hi"}]}),
    "Responses": ("/v1/responses", {"input": "Say hi", "store": False}),
    "Responses-stored": ("/v1/responses", {"input": "Say hi"}),
}


def cpu_per_request(relay, url, body_file, args):
    """(worker CPU us per request, requests, p50 us) of one wrk run against `relay`."""
    worker = max(h.descendants(relay.pid))  # the gunicorn worker: the newest process
    h.settle([worker])
    before = h.cpu_ticks(worker)
    out = subprocess.run(
        h.pinned(
            h.LOAD_CORES,
            [
                "wrk",
                "-t1",
                f"-c{args.c}",
                f"-d{args.seconds}s",
                "-s",
                str(h.BENCH / "wrk_post.lua"),
                url,
                "--",
                str(body_file),
                relay.key,
            ],
        ),
        capture_output=True,
        text=True,
    ).stdout
    done = json.loads(out.strip().splitlines()[-1])
    spent = h.cpu_ticks(worker) - before
    return spent / h.TICKS * 1e6 / max(done["requests"], 1), done["requests"], done["p50_us"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the commit to compare this checkout with")
    parser.add_argument("--surface", choices=SURFACES, default="chat")
    parser.add_argument(
        "--base-surface",
        choices=SURFACES,
        help="A's surface, when not --surface: `ab.py HEAD --surface Responses-stored "
        "--base-surface Responses` is what storing costs",
    )
    parser.add_argument("-c", type=int, default=16, help="concurrent connections")
    parser.add_argument("--seconds", type=int, default=3, help="per cell")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--database-url", help="a scratch database both relays share (default: SQLite each)"
    )
    parser.add_argument(
        "--tracing",
        choices=("on", "off"),
        default="off",
        help="B with OpenTelemetry tracing on, exporting to a local sink (A: off)",
    )
    args = parser.parse_args()
    base = h.WORKDIR / "base"
    subprocess.run(
        ["git", "-C", str(h.ROOT), "worktree", "add", "-q", "--detach", str(base), args.base],
        check=True,
    )
    files = {}
    for name, surface in (("A", args.base_surface or args.surface), ("B", args.surface)):
        path, extra = SURFACES[surface]
        files[name] = h.WORKDIR / f"body-{name}.json"
        files[name].write_text(json.dumps(dict(extra, model="bench", stream=False)))
    try:
        upstream = h.start_upstream()
        traced = h.tracing_env(h.start_otlp_sink().url) if args.tracing == "on" else None
        relays = {
            "A": h.start_relay(upstream.url, root=base, database_url=args.database_url),
            "B": h.start_relay(upstream.url, database_url=args.database_url, env_extra=traced),
        }
        for name, relay in relays.items():  # warm both: imports, pools, caches
            cpu_per_request(relay, relay.url + path, files[name], args)
        cells, ratios, p50s = {"A": [], "B": []}, [], {"A": [], "B": []}
        print(
            f"A = {args.base} ({args.base_surface or args.surface}), B = this checkout "
            f"({args.surface}, tracing {args.tracing}); non-stream c={args.c}, "
            f"worker CPU us per request:",
            flush=True,
        )
        for number in range(args.rounds):
            order = "AB" if number % 2 == 0 else "BA"
            runs = {
                name: cpu_per_request(relays[name], relays[name].url + path, files[name], args)
                for name in order
            }
            got = {name: run[0] for name, run in runs.items()}
            for name in "AB":
                cells[name].append(got[name])
                p50s[name].append(runs[name][2] / 1000)
            ratios.append(got["B"] / got["A"])
            print(
                f"  round {number + 1}: A {got['A']:.0f}  B {got['B']:.0f}  B/A {ratios[-1]:.3f}"
                f"  p50 ms A {p50s['A'][-1]:.2f}  B {p50s['B'][-1]:.2f}",
                flush=True,
            )
        median = statistics.median
        print(
            f"median: A {median(cells['A']):.0f}  B {median(cells['B']):.0f}  "
            f"B/A {median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}); "
            f"p50 ms A {median(p50s['A']):.2f}  B {median(p50s['B']):.2f}"
        )
    finally:
        h.stop_all()
        subprocess.run(["git", "-C", str(h.ROOT), "worktree", "remove", "--force", str(base)])


if __name__ == "__main__":
    main()
