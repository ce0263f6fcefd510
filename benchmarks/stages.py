"""Where a pipeline run spends its time and memory, stage by stage (local runner).

    python -m benchmarks stages -- --config FILE [pipeline arguments...]

Runs ``python -m pipeline`` in this process with the FnApiRunner's
``_execute_bundle`` wrapped: each bundle prints its stage (the fused steps),
wall seconds, and the process's RSS before and after. Stages run one after
another on the local runner, so the seconds add up to the run.
"""
from __future__ import annotations

import resource
import sys
import time

from apache_beam.runners.portability.fn_api_runner import fn_runner


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _short(stage_name: str, width: int = 110) -> str:
    steps = [s.split("/")[0] if "/" in s else s for s in stage_name.split("+")]
    seen: list[str] = []
    for s in steps:
        s = s.strip("()[]")
        if s and s not in seen:
            seen.append(s)
    text = "+".join(seen)
    return text if len(text) <= width else text[:width - 3] + "..."


def install() -> list:
    rows: list = []
    original = fn_runner.FnApiRunner._execute_bundle

    def timed(self, runner_execution_context, bundle_context_manager, bundle_input):
        before, start = _rss_mib(), time.monotonic()
        try:
            return original(self, runner_execution_context, bundle_context_manager, bundle_input)
        finally:
            seconds, after = time.monotonic() - start, _rss_mib()
            name = bundle_context_manager.stage.name
            rows.append((name, seconds, before, after))
            print(f"[stage] {seconds:7.2f} s  RSS {before:6.0f} -> {after:6.0f} MiB  {_short(name)}",
                  file=sys.stderr, flush=True)

    setattr(fn_runner.FnApiRunner, "_execute_bundle", timed)  # Beam's bundle runner, timed per stage
    return rows


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--":
        argv = argv[1:]
    rows = install()
    from pipeline.run import run

    start = time.monotonic()
    status = run(argv)
    total = time.monotonic() - start
    staged = sum(r[1] for r in rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{total:.1f} s in all, {staged:.1f} s in {len(rows)} bundles, the rest building and "
          f"submitting the pipeline; peak RSS {peak:.0f} MiB; exit status {status}")
    print(f"{'seconds':>8} {'share':>6}  stage")
    for name, seconds, *_ in sorted(rows, key=lambda r: -r[1])[:12]:
        print(f"{seconds:8.2f} {seconds / total:6.1%}  {_short(name, 150)}")
    sys.exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
