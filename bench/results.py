"""bench/RESULTS.md from one run's figures: tables first, ratios, then what the machine did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.simulate import describe


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def _row(name: str, a: float, b: float, target: str = "") -> str:
    return f"| {name} | {_ratio(a, b)} | {target} |"


def _http_row(name: str, r: dict[str, Any], note: str = "") -> str:
    bad = sum(r["unexpected"].values()) + r["lost"]
    return (
        f"| {name} | {r['rate']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        f" {r['retries']} | {bad} | {note} |"
    )


def _wrk_row(r: dict[str, Any] | None) -> list[str]:
    if not r:
        return []
    return [
        f"| bare handler, wrk client (C, 1 thread) | {r['rate']:,.0f} | {r['p50_ms']:.1f} |"
        f" {r['p99_ms']:.1f} | | | beside, not in the ratios |"
    ]


def _wrk_ratio(bare: dict[str, Any] | None, ingest: dict[str, Any] | None) -> list[str]:
    if not bare or not ingest:
        return []
    return [
        _row("votestream ingest / bare, both under wrk", ingest["rate"], bare["rate"], ">= 0.25"),
        f"| (votestream ingest under wrk: {ingest['rate']:,.0f}/s, p50 {ingest['p50_ms']:.1f} ms,"
        f" p99 {ingest['p99_ms']:.1f} ms, non-2xx {ingest['non_2xx']}) | | |",
    ]


def _wrk_end_to_end(ingest: dict[str, Any] | None, naive: float) -> list[str]:
    """The same ratio with wrk as votestream's client (the naive app keeps the Python one)."""
    e2e = (ingest or {}).get("end_to_end")
    if not e2e:
        return []
    # wrk stops with a request in flight on each connection: those reach ingest and are
    # counted, but wrk never reads their 202, so up to one more per connection is published
    extra = e2e["published"] - e2e["accepted"]
    agrees = 0 <= extra <= ingest["connections"]
    verdict = f"{extra} in flight when wrk stopped" if agrees else "DO NOT AGREE"
    return [
        _row("votestream end to end under wrk / naive at 64 clients", e2e["counted_per_s"], naive),
        f"| (under wrk: {e2e['counted_per_s']:,.0f} counted/s; {e2e['accepted']:,} answered 202"
        f" and read by wrk, {e2e['published']:,} published: {verdict}; received->counted p99"
        f" {e2e['e2e_p99_ms']:.0f} ms) | | |",
    ]


def _half_load(v: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The runs at half the capacity, with one worker and with two, by label."""
    return [
        (label, run)
        for label, runs in (("1 worker", v["levels"]), ("2 workers", v.get("two_workers", [])))
        for run in runs
        if run["fraction"] == 0.5
    ]


def _half_load_p99(v: dict[str, Any]) -> list[str]:
    """received->counted p99 at half the capacity: a figure, not a ratio, with its target."""
    return [
        f"| received->counted p99 at 50% load, {label} (ms) | {run['e2e_p99_ms']:.0f} | <= 150 |"
        for label, run in _half_load(v)
    ]


def cpu_per_ballot(results: dict[str, Any]) -> list[str]:
    """Each part's CPU per counted ballot with everything on the same cores, and what that
    bounds: no ingest, however lean, is faster than the cores left by the parts beside it."""
    v = results["votestream"]
    wrk = v.get("ingest_wrk") or {}
    runs = [("under wrk, full load", wrk.get("cpu"), (wrk.get("end_to_end") or {}).get("counted"))]
    runs += [(f"{label}, 50% load", run.get("cpu"), run["counted"]) for label, run in _half_load(v)]
    measured = [(label, used, n) for label, used, n in runs if used and n]
    if not measured:
        return []
    parts = list(measured[0][1]["seconds"])
    lines = [
        "## Where a ballot's CPU goes, whole system (every process on the machine, from /proc)",
        "",
        "CPU seconds of each part from the start of the load to the last ballot counted,"
        " divided by the ballots counted (µs per ballot); `client` is wrk or the loadgen;"
        " `postgres` is every backend, serving ingest, the tally and publish.",
        "",
        "| part | " + " | ".join(label for label, _, _ in measured) + " |",
        "|---|" + "---:|" * len(measured),
    ]
    for part in parts:
        cells = [f"{used['seconds'][part] / n * 1e6:,.0f}" for _, used, n in measured]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    totals = [sum(used["seconds"].values()) for _, used, _ in measured]
    cells = [f"{t / n * 1e6:,.0f}" for t, (_, _, n) in zip(totals, measured, strict=True)]
    lines.append("| **all** | " + " | ".join(cells) + " |")
    busy = [f"{t / used['wall']:.2f}" for t, (_, used, _) in zip(totals, measured, strict=True)]
    lines += ["| cores busy (CPU s / wall s) | " + " | ".join(busy) + " |", ""]
    bare = (results["parts"]["http"].get("bare_wrk") or {}).get("rate")
    label, used, n = measured[0]
    if bare and label.startswith("under wrk"):
        cores = results["machine"]["cpus"]
        others = (totals[0] - used["seconds"]["ingest"]) / n * 1e6
        lean = 1e6 / bare  # the bare handler's time per request, one core saturated
        lines += [
            f"Under wrk everything but ingest took {others:,.0f} µs per ballot. Even an ingest"
            f" as cheap as the bare handler (~{lean:,.0f} µs a request) would leave these"
            f" {cores} cores at most {cores * 1e6 / (others + lean):,.0f} ballots/s, against"
            f" the {0.25 * bare:,.0f}/s that 0.25 × the bare handler under wrk asks.",
            "",
        ]
    return lines


def ceilings(p: dict[str, Any]) -> list[str]:
    t, h = p["transport"], p["http"]
    return [
        "## 1. Ceilings (64 closed-loop clients for HTTP; best of 2 runs)",
        "",
        "| what | /s | p50 ms | p99 ms | retries | non-2xx/lost | note |",
        "|---|---:|---:|---:|---:|---:|---|",
        _http_row("bare aiohttp handler", h["bare"]),
        *_wrk_row(h.get("bare_wrk")),
        _http_row("handler + Kafka acks=all, linger 1 ms", h["kafka_linger1"]),
        _http_row("handler + Kafka acks=all, linger 5 ms", h["kafka_linger5"]),
        f"| broker produce (acks=all, linger 5) | {t['broker_produce']:,.0f} | | | | | records |",
        f"| broker consume | {t['broker_consume']:,.0f} | | | | | records |",
        f"| Postgres COPY, 2000-row transactions | {t['pg_copy']:,.0f} | | | | | rows |",
        f"| Postgres tally store (`PostgresTallyStore.apply`, 2000/batch) |"
        f" {t['pg_tally_store']:,.0f} | | | | | ballots |",
        "",
    ]


def naive(p: dict[str, Any]) -> list[str]:
    n = p["naive"]
    lines = [
        f"## 3. Naive baseline (pool of {n['pool']} connections, READ COMMITTED, per vote one"
        " transaction: INSERT ballot + `UPDATE candidates SET votes = votes + 1` per selection"
        " in page order (`click order`: in the order the voter picked); a deadlock answers 503"
        " and the client retries up to 3 times)",
        "",
        "| clients | votes/s | p50 ms | p99 ms | deadlocks | retries | totals correct |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, label in (
        ("form1", "1"),
        ("form16", "16"),
        ("form64", "64"),
        ("click64", "64, click order"),
    ):
        r = n[key]
        lines.append(
            f"| {label} | {r['rate']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
            f" {r['server']['deadlocks']} | {r['retries']} | {'yes' if r['correct'] else 'NO'} |"
        )
    return [*lines, ""]


def votestream(v: dict[str, Any]) -> list[str]:
    lines = [
        "## 2. votestream end to end (HTTP in -> Kafka -> Faust tally -> Postgres -> results API)",
        "",
        "| run | offered /s | accepted /s | counted /s | ingest p50 / p99 ms |"
        " received->counted p50 / p99 ms | drain ms | totals |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows = [("capacity probe, closed loop 64, best of 2", v["capacity"])]
    rows += [(f"1 worker, {r['fraction']:.0%}", r) for r in v["levels"]]
    rows += [(f"2 workers, {r['fraction']:.0%}", r) for r in v.get("two_workers", [])]
    for name, r in rows:
        lat = next(iter(r["latency_ms"].values()), {"p50": 0, "p99": 0})
        ok = "equal" if r["ok"] else f"FAILED {r['differences'][:2]} {r['unexpected']}"
        lines.append(
            f"| {name} | {r['offered_per_s']:,.0f} | {r['accepted_per_s']:,.0f} |"
            f" {r['counted_per_s']:,.0f} | {lat['p50']:.1f} / {lat['p99']:.1f} |"
            f" {r['e2e_p50_ms']:.0f} / {r['e2e_p99_ms']:.0f} | {r['drain_ms']:.0f} | {ok} |"
        )
    return [*lines, ""]


def tally_alone(p: dict[str, Any]) -> list[str]:
    t = p["tally_alone"]
    return [
        f"## 4. Tally alone ({t['ballots']:,} ballots pre-filled on 12 partitions, no HTTP)",
        "",
        "| consumer | ballots/s |",
        "|---|---:|",
        f"| Faust agent (`services.tally`) | {t['faust']['rate']:,.0f} |",
        f"| plain aiokafka loop, same store | {t['plain']['rate']:,.0f} |",
        f"| ratio Faust / plain | {_ratio(t['faust']['rate'], t['plain']['rate'])} |",
        f"| Faust agent with no work (same app, a poll per batch: Faust's"
        f" ceiling) | {t['faust_ceiling']['rate']:,.0f} |",
        f"| ratio Faust tally / Faust ceiling | "
        f"{_ratio(t['faust']['rate'], t['faust_ceiling']['rate'])} |",
        "",
    ]


def ratios(results: dict[str, Any]) -> list[str]:
    p, v = results["parts"], results["votestream"]
    # end to end against the bare handler and the naive app measured in turns with it
    bare, naive64 = v["beside"]["bare"]["rate"], v["beside"]["naive64"]
    ceiling = p["http"]["bare"]["rate"]  # the awaited-ack handlers ran beside this one
    cap = v["capacity"]
    lat = next(iter(cap["latency_ms"].values()))
    http, alone = p["http"], p["tally_alone"]
    return [
        "## Ratios (same run, same machine, same client)",
        "",
        "End to end is compared with the bare handler and the naive app measured in turns with"
        f" it, best of {v['beside']['runs']} each (bare"
        f" {bare:,.0f}/s, naive {naive64['rate']:,.0f}/s, p99 {naive64['p99_ms']:.1f} ms); the"
        " awaited-ack rows with the ceilings of section 1.",
        "",
        "| ratio | value | target |",
        "|---|---:|---:|",
        _row(
            "votestream end to end / naive at 64 clients",
            cap["counted_per_s"],
            naive64["rate"],
            ">= 2.5",
        ),
        *_wrk_end_to_end(v.get("ingest_wrk"), naive64["rate"]),
        _row("naive p99 / votestream ingest p99 (64 clients)", naive64["p99_ms"], lat["p99"]),
        _row("awaited-ack handler (linger 1) / bare", http["kafka_linger1"]["rate"], ceiling),
        _row("awaited-ack handler (linger 5) / bare", http["kafka_linger5"]["rate"], ceiling),
        _row("votestream ingest (accepted) / bare", cap["accepted_per_s"], bare),
        _row("votestream end to end (counted) / bare", cap["counted_per_s"], bare),
        _row(
            "Faust tally / plain aiokafka loop",
            alone["faust"]["rate"],
            alone["plain"]["rate"],
            ">= 0.8",
        ),
        *_wrk_ratio(http.get("bare_wrk"), v.get("ingest_wrk")),
        *_half_load_p99(v),
        "",
    ]


def profiles(results: dict[str, Any]) -> list[str]:
    v, alone = results["votestream"], results["parts"]["tally_alone"]
    top: dict[str, Any] = next((r for r in v["levels"] if r["fraction"] == 1.0), {})
    found_by = {
        "ingest at 100%": top.get("profile_ingest"),
        "tally at 100%": top.get("profile_tally"),
        "Faust tally alone (section 4)": alone.get("faust_profile"),
        "plain aiokafka loop alone (section 4)": alone.get("plain_profile"),
    }
    lines = [
        "## Profiles (py-spy, 200 Hz, % of all samples)",
        "",
        "Flame graphs beside this file, made apart from this run: `flame-ingest.svg` (ingest"
        " under 64 closed-loop clients, `python -m bench.ingest_cpu --flame DIR`) and"
        " `flame-tally.svg` (the Faust tally draining a pre-filled topic,"
        " `python -m bench.tally_cpu_run --flame DIR`).",
        "",
    ]
    for name, maybe in found_by.items():
        found = maybe or {}
        lines += [f"**{name}**", "", "| heaviest self time | % | our functions, total | % |"]
        lines.append("|---|---:|---|---:|")
        pairs = zip(found.get("self", []), found.get("ours", []), strict=False)
        lines += [f"| `{a}` | {x:.1f} | `{b}` | {y:.1f} |" for (a, x), (b, y) in pairs]
        lines.append("")
    return lines


def write_results(results: dict[str, Any], path: Path) -> None:
    m = results["machine"]
    lines = [
        "# Benchmark results (written by `make bench`)",
        "",
        f"One run, {m['cpus']} CPUs, Python {m['python']}, {results['seconds_per_run']:g} s per"
        f" load run, {results['wall_seconds']:g} s in all. Load average before"
        f" {m['load_before']}, after {m['load_after']} (other work on the machine shows here).",
        "Everything co-located on loopback: clients, servers, broker (Tansu, in memory) and"
        " PostgreSQL share the same cores, so absolute figures are low and noisy; the ratios"
        " are the point.",
        "",
        *ratios(results),
        *cpu_per_ballot(results),
        *ceilings(results["parts"]),
        *votestream(results["votestream"]),
        *naive(results["parts"]),
        *tally_alone(results["parts"]),
        *profiles(results),
        "## Capacity simulation (bench/simulate.py)",
        "",
        "```",
        describe(results["simulation"]),
        "```",
        "",
    ]
    path.write_text("\n".join(lines))
