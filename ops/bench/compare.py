"""The relay against LiteLLM's proxy on one fast fake upstream: req/s, p50/p99,
first-event latency, CPU per process, and the performance targets, as one
Markdown table. Prints; asserts nothing. About 8 minutes with the defaults
(3 rounds of 5-second cells; --rounds 1 takes about 3).

    python3 ops/bench/compare.py [--duration 5] [--rounds 3] [--install-litellm]
                                 [--only relay] [--database-url postgresql://...]
                                 [--fast-paths off] [--spend off] [--tracing on]

The servers under test (one gevent worker; LiteLLM with one worker) share
core 0, and only one of them is loaded at a time: each row runs on both,
back to back, every round, and a row's ratio is the median of its rounds'.
wrk (non-stream rows), sse_load.py (stream rows), the upstream and this
script share core 1. CPU% is of one core over each cell: a load or upstream
column near 100 means the number measures them, not the server. The slow
streams and the 2-worker rows run after LiteLLM has stopped.
--database-url must name a scratch database: models and a key are created in it.
--fast-paths off runs the relay with RELAY_FAST_PATHS=0 (app/fast/ unused):
the same rows, for the public path's numbers. The relay's models have a
price and its key a budget (far above the load) unless --spend off.
--tracing on runs the relay with OpenTelemetry tracing on (every request
sampled), exporting to a local OTLP sink (otlp_sink.py) on the load core:
the same rows, at tracing's price (ab.py --tracing on measures it closer).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

SURFACES = {  # name: (path, body besides model and stream, what a whole stream ends with)
    "chat": (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "Say hi"}]},
        "[DONE]",
    ),
    # store false: LiteLLM without a database stores nothing either.
    "Responses": ("/v1/responses", {"input": "Say hi", "store": False}, "response.completed"),
    # store left to its default (true): every answer is stored before it is acknowledged.
    "Responses stored": ("/v1/responses", {"input": "Say hi"}, "response.completed"),
}
LEVELS = (1, 16, 64)
ROWS = [(surface, stream, c) for surface in SURFACES for stream in (False, True) for c in LEVELS]


def body(model, surface, stream):
    return dict(SURFACES[surface][1], model=model, stream=stream)


def run_load(command):
    """Run a load generator to its end on the load core: (stdout, CPU%)."""
    begun = time.monotonic()
    process = subprocess.Popen(
        h.pinned(h.LOAD_CORES, command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = process.stdout.read()
    # wait4 gives the child's own CPU time, exactly, however short its life.
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    return out, round(100 * (usage.ru_utime + usage.ru_stime) / (time.monotonic() - begun))


def cell(server, upstream, surface, stream, c, args, url=None, model=None):
    url = (url or server.url) + SURFACES[surface][0]
    payload = json.dumps(body(model or server.model, surface, stream))
    connections = _connections(upstream)
    meter = h.CpuMeter(server=server.pid, upstream=upstream.pid)
    if stream:
        out, load = run_load(
            [
                sys.executable,
                str(h.BENCH / "sse_load.py"),
                "--url",
                url,
                "--body",
                payload,
                "--key",
                getattr(server, "key", ""),
                "--concurrency",
                str(c),
                "--duration",
                str(args.duration),
                "--end",
                SURFACES[surface][2],
            ]
        )
    else:
        body_file = h.WORKDIR / f"body-{surface}.json"
        body_file.write_text(payload)
        # --timeout: wrk leaves answers slower than its 2 s default out of the
        # latencies; a slow proxy at c=64 must show up in p99, not vanish.
        out, load = run_load(
            [
                "wrk",
                "-t1",
                f"-c{c}",
                f"-d{args.duration}s",
                "--latency",
                "--timeout",
                "30s",
                "-s",
                str(h.BENCH / "wrk_post.lua"),
                url,
                "--",
                str(body_file),
                getattr(server, "key", ""),
            ]
        )
    cpu = dict(meter.result(), load=load)
    connections = _connections(upstream) - connections
    try:
        raw = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": out.strip()[-200:], "cpu": cpu}
    if stream:
        return {
            "rate": raw["per_second"],
            "p50": raw["total_p50"],
            "p99": raw["total_p99"],
            "first": raw["first_p50"],
            "bad": raw["bad"] + sum(raw["errors"].values()),
            "conns": round(connections / max(raw["sent"], 1), 2),
            "cpu": cpu,
        }
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "rate": round((raw["requests"] - raw["status"]) / (raw["duration_us"] / 1e6), 1),
        "p50": raw["p50_us"] / 1000,
        "p99": raw["p99_us"] / 1000,
        "bad": errors,
        "conns": round(connections / max(raw["requests"], 1), 2),
        "cpu": cpu,
    }


def _connections(upstream):
    # Per request, 1 means the server under test connects (and resolves) every time.
    return json.loads(h.http("GET", upstream.url + "/stats")[1]).get("connections", 0)


def probe(server, surface, stream):
    """One request before the load: a surface that fails is reported, not timed."""
    status, answer = h.http(
        "POST",
        server.url + SURFACES[surface][0],
        body(server.model, surface, stream),
        token=server.key,
    )
    good = b'"completed"' in answer or b"chat.completion" in answer
    if stream:
        good = SURFACES[surface][2].encode() in answer
    return None if status == 200 and good else f"{status} {answer[:200]!r}"


def prepare(name, server, upstream):
    """Probe every surface once and warm wrk's paths: {(surface, stream): failure or None}."""
    failed = {}
    for surface in SURFACES:
        for stream in (False, True):
            failed[surface, stream] = probe(server, surface, stream)
            if failed[surface, stream]:
                print(
                    f"{name} {surface} stream={stream} failed its probe: {failed[surface, stream]}",
                    flush=True,
                )
    for surface, stream in (("chat", False), ("Responses", False), ("Responses stored", False)):
        if not failed[surface, stream]:
            cell(server, upstream, surface, stream, 16, argparse.Namespace(duration=1))
    return failed


def run_rows(servers, upstream, args, results, ratios):
    """Every row, for every server in turn, `args.rounds` times.

    A shared machine's speed drifts by tens of percent within minutes (other
    tenants), so both servers run each row back to back, in alternating order,
    and the ratio of a row is the median of its rounds' ratios: what the
    machine did meanwhile touches both sides of each ratio alike.
    """
    failed = {name: prepare(name, server, upstream) for name, server in servers.items()}
    samples = {}
    for round_ in range(args.rounds):
        for surface, stream, c in ROWS:
            order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
            for name in order:
                key = (name, surface, stream, c)
                if failed[name][surface, stream]:
                    results[key] = {"error": failed[name][surface, stream]}
                    continue
                h.settle([server.pid for server in servers.values()])
                got = cell(servers[name], upstream, surface, stream, c, args)
                samples.setdefault(key, []).append(got)
                print(
                    f"  round {round_ + 1} {name:8} {surface:9} "
                    f"{'stream' if stream else 'whole ':6} c={c:<3} {json.dumps(got)}",
                    flush=True,
                )
    for key, runs in samples.items():
        # The median round by rate stands for the row (its latencies with it).
        timed = sorted((r for r in runs if "rate" in r), key=lambda r: r["rate"])
        results[key] = timed[len(timed) // 2] if timed else runs[-1]
    for surface, stream, c in ROWS:
        mine = samples.get(("relay", surface, stream, c), [])
        theirs = samples.get(("LiteLLM", surface, stream, c), [])
        each = sorted(
            filter(None, (_ratio(a.get("rate"), b.get("rate")) for a, b in zip(mine, theirs)))
        )
        if each:
            ratios[surface, stream, c] = (each[len(each) // 2], each[0], each[-1])


def slow_streams(relay, count=1000):
    """count streams at once on one worker, an event every 100 ms: peak RSS, drops."""
    workers = [pid for pid in h.descendants(relay.pid)[1:] if "gunicorn" in _cmdline(pid)]
    peak, done = [0.0], threading.Event()

    def sample():
        while not done.wait(0.1):
            peak[0] = max(peak[0], sum(h.rss_mb(pid) for pid in workers))

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, load = run_load(
        [
            sys.executable,
            str(h.BENCH / "sse_load.py"),
            "--url",
            relay.url + "/v1/chat/completions",
            "--once",
            "--body",
            json.dumps(body("bench-slow", "chat", True)),
            "--key",
            relay.key,
            "--concurrency",
            str(count),
            "--timeout",
            "120",
        ]
    )
    done.set()
    sampler.join()
    raw = json.loads(out.strip().splitlines()[-1])
    return {"rss": round(peak[0]), "dropped": count - raw["ok"], "raw": raw, "load": load}


# A competing writer on the relay's disk: 64 KiB writes, each followed by an
# fsync, until its time is up (it never outlives the cell it competes with).
_DISK_WRITER = """
import os, sys, time
end = time.monotonic() + float(sys.argv[2])
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
block, n = os.urandom(1 << 16), 0
while time.monotonic() < end:
    os.pwrite(fd, block, (n % 1024) << 16)
    os.fsync(fd)
    n += 1
os.close(fd)
os.unlink(sys.argv[1])
print(n)
"""


def busy_disk(relay, upstream, args, levels=(1, 64)):
    """Stored Responses (non-stream) on the relay, quiet and beside a writer
    that fsyncs on the same disk, alternating, `args.rounds` times:
    {c: (quiet, busy, fsyncs/s)}, the median round by busy/quiet."""
    where = Path(relay.home) if getattr(relay, "home", None) else h.WORKDIR
    rounds = {c: [] for c in levels}
    for round_ in range(args.rounds):
        for c in levels:
            h.settle([relay.pid])
            quiet = cell(relay, upstream, "Responses stored", False, c, args)
            h.settle([relay.pid])
            writer = subprocess.Popen(
                h.pinned(
                    h.LOAD_CORES,
                    [
                        sys.executable,
                        "-c",
                        _DISK_WRITER,
                        str(where / "busy-disk.bin"),
                        str(args.duration + 1),
                    ],
                ),
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.5)  # the writer's fsyncs under way before the load starts
            busy = cell(relay, upstream, "Responses stored", False, c, args)
            fsyncs = int(writer.communicate()[0].strip() or 0) / (args.duration + 1)
            print(
                f"  round {round_ + 1} busy disk c={c}: quiet {json.dumps(quiet)} "
                f"busy {json.dumps(busy)} writer fsyncs/s {fsyncs:.0f}",
                flush=True,
            )
            rounds[c].append((quiet, busy, fsyncs))
    out = {}
    for c, runs in rounds.items():
        runs.sort(key=lambda r: _ratio(r[1].get("rate"), r[0].get("rate")) or 0)
        out[c] = runs[len(runs) // 2]
    return out


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def litellm_paths(litellm, upstream):
    """Upstream paths LiteLLM's Responses reach: the chat bridge is what is compared."""
    before = json.loads(h.http("GET", upstream.url + "/stats")[1])
    for stream in (False, True):
        probe(litellm, "Responses", stream)
    after = json.loads(h.http("GET", upstream.url + "/stats")[1])
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def spread(low, high):
    """The lowest and highest round's ratio, when they differ in the first decimal."""
    return f" ({fmt(low)}-{fmt(high)})" if low is not None and fmt(low) != fmt(high) else ""


def table(results, ratios, extra, litellm_ran):
    print(
        "\n| row | LiteLLM | relay | ratio (rounds' range) | target | met? | relay p50 / p99 ms "
        "| relay 1st event p50 ms | LiteLLM p50 / p99 ms | CPU% relay / load / upstream "
        "| CPU% LiteLLM / load / upstream | upstream conns/req relay / LiteLLM |"
    )
    print("|" + " --- |" * 12)
    for surface, stream, c in ROWS:
        mine = results.get(("relay", surface, stream, c), {"error": "not run"})
        theirs = results.get(("LiteLLM", surface, stream, c), {})
        unit = "streams/s" if stream else "req/s"
        label = f"{surface} {'stream' if stream else 'non-stream'} c={c} ({unit})"
        ratio, low, high = ratios.get((surface, stream, c), (None, None, None))
        met = "n/a" if ratio is None else "yes" if ratio >= 10 else "no"

        def cpu(r):
            v = r.get("cpu")
            if not v:
                return "-"
            # "!": the load generator or upstream used most of its core, so
            # this row may measure them rather than the server.
            wait = f" (+{v['server_wait']}w)" if v.get("server_wait", 0) >= 5 else ""
            return f"{v['server']}{wait} / " + " / ".join(
                f"{v[k]}{'!' if v[k] >= 90 else ''}" for k in ("load", "upstream")
            )

        def lat(r):
            return f"{fmt(r.get('p50'), 2)} / {fmt(r.get('p99'), 2)}" if "rate" in r else "-"

        def rate(r):
            if "rate" not in r:
                return r.get("error", "-")[:40] if r else "-"
            return fmt(r["rate"]) + (f" ({r['bad']} bad)" if r.get("bad") else "")

        print(
            f"| {label} | {rate(theirs) if litellm_ran else 'skipped'} | {rate(mine)} "
            f"| {fmt(ratio) + 'x' if ratio else '-'}{spread(low, high)} | >= 10x LiteLLM "
            f"| {met} | {lat(mine)} "
            f"| {fmt(mine.get('first'), 2) if stream else '-'} | {lat(theirs)} | {cpu(mine)} "
            f"| {cpu(theirs)} | {mine.get('conns', '-')} / {theirs.get('conns', '-')} |"
        )
    for label, theirs, mine, target, met in extra:
        print(f"| {label} | {theirs} | {mine} | | {target} | {met} | | | | | | |")


def checks(results, direct, slow, scale, disk=None):
    """The target rows besides the ratios: (label, LiteLLM, relay, target, met)."""
    rows = []
    for c, (quiet, busy, fsyncs) in sorted((disk or {}).items()):
        share = _ratio(busy.get("rate"), quiet.get("rate"))
        rows.append(
            (
                f"busy disk: Responses stored non-stream c={c}, req/s beside a writer doing "
                f"{fsyncs:.0f} fsyncs/s on the same disk / quiet ({fmt(busy.get('rate'))} / "
                f"{fmt(quiet.get('rate'))}; p50 {fmt(busy.get('p50'), 2)} / "
                f"{fmt(quiet.get('p50'), 2)} ms; the relay waited for its core "
                f"{_waited(busy)}% / {_waited(quiet)}% of the time)",
                "not run",
                fmt(share, 2),
                ">= 0.8",
                "n/a" if share is None else "yes" if share >= 0.8 else "no",
            )
        )
    for surface in SURFACES:
        for stream, key, limit in ((False, "p50", 1.5), (True, "first", 2.0)):
            base = direct.get(stream, {}).get(key)
            what = "first event" if stream else "p50"
            values = []
            for name in ("LiteLLM", "relay"):
                got = results.get((name, surface, stream, 1), {}).get(key)
                values.append(None if got is None or base is None else got - base)
            rows.append(
                (
                    f"added {what} c=1, {surface} {'stream' if stream else 'non-stream'} "
                    f"vs direct chat (ms; direct {fmt(base, 3)})",
                    fmt(values[0], 2),
                    fmt(values[1], 2),
                    f"<= {limit} ms",
                    "n/a" if values[1] is None else "yes" if values[1] <= limit else "no",
                )
            )
    for surface in SURFACES:
        for stream in (False, True):
            tail = []
            for name in ("LiteLLM", "relay"):
                r = results.get((name, surface, stream, 64), {})
                tail.append(r["p99"] / r["p50"] if r.get("p50") else None)
            rows.append(
                (
                    f"p99 / p50 c=64, {surface} {'stream' if stream else 'non-stream'}",
                    fmt(tail[0]),
                    fmt(tail[1]),
                    "<= 3x",
                    "n/a" if tail[1] is None else "yes" if tail[1] <= 3 else "no",
                )
            )
    if slow:
        rows.append(
            (
                "1,000 slow streams (1 event/100 ms) on 1 worker: peak RSS MB / dropped",
                "not run",
                f"{slow['rss']} / {slow['dropped']}",
                "<= 200 MB, 0 dropped",
                "yes" if slow["rss"] <= 200 and slow["dropped"] == 0 else "no",
            )
        )
    if scale:
        # On a machine with a core to spare for the load, 2 workers would do
        # twice one's rate. Here the second worker shares core 1 with the
        # load and the upstream, so the rate per core the workers used tells
        # linear scaling apart from workers that slow each other down.
        one, two = scale
        ratio = _ratio(two.get("rate"), one.get("rate"))
        per_core = _ratio(_per_core(two), _per_core(one))
        rows.append(
            (
                f"chat non-stream c=64, 2 workers / 1 worker: req/s {fmt(ratio, 2)}x "
                f"({fmt(two.get('rate'))} / {fmt(one.get('rate'))}); req/s per core the "
                f"workers used",
                "not run",
                f"{fmt(per_core, 2)}",
                ">= 0.9 (linear in the cores the workers get)",
                "n/a" if per_core is None else "yes" if per_core >= 0.9 else "no",
            )
        )
    return rows


def _waited(cell_result):
    return cell_result.get("cpu", {}).get("server_wait", "-")


def _ratio(a, b):
    return a / b if a and b else None


def _per_core(cell_result):
    """Requests per second per core of CPU the server's processes used."""
    busy = cell_result.get("cpu", {}).get("server")
    return cell_result["rate"] / (busy / 100) if busy and cell_result.get("rate") else None


def start_litellm(binary, upstream_url, args):
    """LiteLLM with its database and a virtual key; without a database when
    there is none to give it or it cannot use one (its Prisma client needs
    engines that `prisma generate` downloads), said in the output."""
    if args.litellm_database != "none":
        try:
            url = h.litellm_database(args.litellm_database)
            litellm = h.start_litellm(binary, upstream_url, database_url=url)
            print(f"LiteLLM: with its PostgreSQL database and a virtual key ({url})", flush=True)
            return litellm
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            h.stop_all_named("litellm")
            print(f"LiteLLM could not run with its database, so runs without: {exc}"[:600])
    print("LiteLLM: without a database, its master key as the client key", flush=True)
    return h.start_litellm(binary, upstream_url)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per cell")
    parser.add_argument(
        "--rounds", type=int, default=3, help="times each row runs per server (the median counts)"
    )
    parser.add_argument(
        "--install-litellm",
        action="store_true",
        help=f"install litellm[proxy]=={h.LITELLM_VERSION} into {h.LITELLM_VENV}",
    )
    parser.add_argument("--only", choices=("relay",), help="skip LiteLLM")
    parser.add_argument(
        "--database-url", help="the relay's database (default: SQLite in a temp dir)"
    )
    parser.add_argument(
        "--litellm-database",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server (URL of a database there) where LiteLLM gets a fresh "
        "database litellm_bench, as it runs in production; 'none': LiteLLM without one",
    )
    parser.add_argument(
        "--fast-paths",
        choices=("on", "off"),
        default="on",
        help="the relay's RELAY_FAST_PATHS (off: every call takes the public path)",
    )
    parser.add_argument(
        "--spend",
        choices=("on", "off"),
        default="on",
        help="a price on the models and a budget on the key (off: neither)",
    )
    parser.add_argument(
        "--tracing",
        choices=("on", "off"),
        default="off",
        help="the relay's OpenTelemetry tracing, exporting to a local sink",
    )
    args = parser.parse_args()
    # The relays started below inherit this environment (harness.start_relay).
    os.environ["RELAY_FAST_PATHS"] = "1" if args.fast_paths == "on" else "0"
    args.spend = args.spend == "on"
    if not shutil.which("wrk"):
        print("wrk is missing: install Debian's package (apt-get install wrk), then run again")
        return
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(h.LOAD_CORES)})  # this script stays off the server's core
    else:
        print("fewer than 2 cores: nothing is pinned; load and server share the CPU")
    litellm_bin = None if args.only else h.litellm_binary(args.install_litellm)
    print(h.versions(litellm_bin), flush=True)
    print(f"relay fast paths (app/fast/): {args.fast_paths}", flush=True)
    print(f"relay tracing: {args.tracing}", flush=True)
    if not args.only and not litellm_bin:
        print(
            f"LiteLLM was skipped: not installed (--install-litellm puts it in {h.LITELLM_VENV})",
            flush=True,
        )
    results, ratios, direct, slow, scale, disk = {}, {}, {}, None, None, None
    try:
        upstream, slow_upstream = h.start_upstream(), h.start_upstream(interval=0.1)
        traced = h.tracing_env(h.start_otlp_sink().url) if args.tracing == "on" else None
        print("direct to the upstream ...", flush=True)
        for stream in (False, True):
            direct[stream] = cell(upstream, upstream, "chat", stream, 1, args, model="fast-model")
        servers = {
            "relay": h.start_relay(
                upstream.url,
                slow_upstream.url,
                database_url=args.database_url,
                spend=args.spend,
                env_extra=traced,
            )
        }
        if litellm_bin:
            servers["LiteLLM"] = start_litellm(litellm_bin, upstream.url, args)
            print(
                f"LiteLLM's Responses reached the upstream as: "
                f"{litellm_paths(servers['LiteLLM'], upstream)}",
                flush=True,
            )
        print(
            f"{' and '.join(servers)} (1 worker each, both on core 0, one loaded at a "
            f"time), {args.rounds} rounds ...",
            flush=True,
        )
        run_rows(servers, upstream, args, results, ratios)
        relay = servers.pop("relay")
        for other in servers.values():
            other.stop()  # alone on its core for the rest
        disk = busy_disk(relay, upstream, args)
        slow = slow_streams(relay)
        print(f"  slow streams: {json.dumps(slow)}", flush=True)
        h.settle([relay.pid])  # the slow streams' last connections closing
        one = cell(relay, upstream, "chat", False, 64, args)
        relay.stop()
        relay2 = h.start_relay(
            upstream.url,
            workers=2,
            cores="0,1",
            database_url=args.database_url,
            spend=args.spend,
            env_extra=traced,
        )
        prepare("relay, 2 workers", relay2, upstream)  # warm, as the 1-worker relay is
        h.settle([relay2.pid])
        scale = (one, cell(relay2, upstream, "chat", False, 64, args))
        relay2.stop()
    except RuntimeError as exc:
        print(f"stopped: {exc}")
    finally:
        h.stop_all()
    table(results, ratios, checks(results, direct, slow, scale, disk), bool(litellm_bin))
    print(
        f"\nCPU% is of one core; '(+Nw)': the server waited N% of the time for its core "
        f"(other processes: a noisy machine); '!' marks a load generator or upstream at "
        f">= 90%. "
        f"The 2-worker row puts a worker on the load's core: on 2 cores its req/s cannot "
        f"double, so the row compares req/s per core the workers used. Logs: {h.WORKDIR}"
    )


if __name__ == "__main__":
    main()
