"""Summarises the load generator's JSON lines (target/bench/results.jsonl) with the ratios
BENCHMARKS.md quotes. Used by run.sh; standard library only."""

import json
import sys


def load(path):
    runs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                report = json.loads(line)
                runs[report.get("label")] = report
    return runs


def ratio(a, b):
    return a / b if a and b else float("nan")


def main(path):
    runs = load(path)
    ingest = [r for r in runs.values() if "throughput_per_s" in r]
    if ingest:
        print()
        print(f"{'run':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}  statuses")
        for r in ingest:
            lat = r["latency"]
            print(
                f"{r['label']:<22}{r['throughput_per_s']:>10.0f}{lat['p50_ms']:>10.2f}"
                f"{lat['p99_ms']:>10.2f}{lat['max_ms']:>10.2f}  {r['statuses']}"
            )
            sync = r.get("sync")
            if sync:
                s = sync["latency"]
                print(
                    f"{'':<22}webhook to sync.completed: p50 {s['p50_ms']:.2f} ms, "
                    f"p99 {s['p99_ms']:.2f} ms (own {sync['own']}, covered {sync['covered']}, "
                    f"not seen {sync['missing']})"
                )
            mem = r.get("server_memory")
            if mem:
                print(
                    f"{'':<22}RSS idle {mem['idle_rss_mib']:.1f} MiB, "
                    f"peak {mem['peak_rss_mib']:.1f} MiB"
                )

    def thr(label):
        return runs.get(label, {}).get("throughput_per_s")

    def p99(label):
        return runs.get(label, {}).get("latency", {}).get("p99_ms")

    print()
    for store, target in (("sqlite", 0.5), ("sqlite-full", 0.5), ("postgres", 0.3), ("redis", 0.5)):
        r = ratio(thr(store), thr("ceiling"))
        if r == r:
            verdict = "met" if r >= target else "NOT met"
            print(f"{store} / ceiling throughput: {r:.2f} (target {target:.2f}: {verdict})")
    for store in ("sqlite", "sqlite-full"):
        t = ratio(thr(store), thr("baseline"))
        p = ratio(p99("baseline"), p99(store))
        if t == t:
            print(
                f"{store} / baseline throughput: {t:.1f}x (target 100x: "
                f"{'met' if t >= 100 else 'NOT met'}); baseline p99 / {store} p99: {p:.1f}x "
                f"(target 50x: {'met' if p >= 50 else 'NOT met'})"
            )
    fan = runs.get("fanout")
    if fan:
        mem = fan.get("memory") or {}
        print(
            f"fan-out: {fan['subscribers']} subscribers, last one after {fan['worst_last_ms']:.1f} ms "
            f"(first to last {fan['worst_spread_ms']:.1f} ms), "
            f"{mem.get('per_connection_kib', float('nan')):.1f} KiB per connection"
        )
    large = runs.get("large")
    if large:
        times = ", ".join(f"{r['webhook_to_completed_ms']:.0f} ms" for r in large["rounds"])
        print(f"large project ({large['dependencies']} deps, {large['issues']} issues): {times}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/bench/results.jsonl")
