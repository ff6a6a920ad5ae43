"""The end-of-run report: rates, latency percentiles and the totals check."""

from __future__ import annotations

from typing import Any

from services.loadgen.driver import Stats


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Machine-readable: what bench/ reads."""
    stats: Stats = result["stats"]
    seconds = max(stats.seconds, 1e-9)
    return {
        "campaign": result["campaign"],
        "mode": result["mode"],
        "seconds": round(stats.seconds, 3),
        "sent": stats.sent,
        "offered_per_s": round(stats.sent / max(stats.load_seconds, 1e-9), 1),
        "accepted": stats.accepted,
        "accepted_per_s": round(stats.accepted / seconds, 1),
        "answered_as_expected": stats.answered,
        "retries": stats.retries,
        "lost": stats.lost,
        "dropped": stats.dropped,
        "unexpected": {str(k): v for k, v in stats.unexpected.items()},
        "errors": dict(stats.errors.most_common()),
        "latency_ms": {
            ch: {f"p{p:g}": h.ms(p) for p in (50, 90, 99, 99.9, 100)}
            for ch, h in stats.latency.items()
        },
        "expected_counted": result["expected"].counted,
        "published_counted": result["published"].counted,
        "settle_seconds": round(result["waited"], 3),
        "differences": result["differences"],
        "checked": result["checked"],
        "ok": result["ok"],
    }


def ballot_ids(result: dict[str, Any]) -> dict[str, list[str]]:
    """The ballots the system must count (answered 202) and those nobody knows about (never
    answered: counted or not), for a check against the ballots table."""
    stats: Stats = result["stats"]
    return {
        "accepted": [str(i) for i in stats.accepted_ids],
        "uncertain": [str(i) for i in stats.uncertain_ids],
    }


def report(result: dict[str, Any]) -> str:
    s, stats = summary(result), result["stats"]
    unexpected = ", ".join(f"{k}: {v}" for k, v in s["unexpected"].items()) or "none"
    lines = [
        f"loadgen {s['campaign']}: {s['mode']} for {s['seconds']:.1f} s",
        f"  offered   {s['sent']} requests = {s['offered_per_s']:.0f}/s"
        f" (not sent, client over its in-flight cap: {s['dropped']})",
        f"  accepted  {s['accepted']} ballots = {s['accepted_per_s']:.0f}/s;"
        f" retries {s['retries']}, lost {s['lost']}, unexpected answers: {unexpected}",
    ]
    if s["errors"]:
        errors = ", ".join(f"{kind} {n}" for kind, n in s["errors"].items())
        lines.append(f"  no answer {errors} (each retried; the target went away or stalled)")
    for channel, hist in result["stats"].latency.items():
        lines.append(f"  latency {channel:<7} {hist.summary()} ({hist.count} answers)")
    if not s["checked"]:
        lines.append("  totals    not checked (--no-check)")
    elif s["differences"]:
        lines.append(f"  totals    DIFFER after waiting {s['settle_seconds']:.1f} s:")
        lines += [f"    {d}" for d in s["differences"][:30]]
        extra, unknown = s["published_counted"] - s["expected_counted"], stats.own.uncertain
        if 0 < extra <= unknown:
            lines.append(
                f"  totals    the {extra} more counted can be among the {unknown} never answered"
                " (taken before the connection broke, the client never knew)"
            )
    else:
        e = result["expected"]
        rejected = ", ".join(f"{k} {v}" for k, v in sorted((+e.rejected).items())) or "none"
        lines.append(
            f"  totals    published = own count (counted {e.counted}, rejected: {rejected});"
            f" settled {s['settle_seconds']:.2f} s after the load stopped"
        )
    if result["stats"].own.uncertain:
        lines.append(f"  uncertain {result['stats'].own.uncertain} ballots never answered")
    lines.append("  RESULT    " + ("OK" if s["ok"] else "FAILED"))
    return "\n".join(lines)
