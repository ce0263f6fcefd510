"""``python -m benchmarks NAME [args]`` (or ``./run.sh bench NAME [args]``)."""
import importlib
import sys

BENCHMARKS = {"e2e": "benchmarks.e2e", "replay": "benchmarks.replay",
              "fleet_scale": "benchmarks.fleet_scale",
              "soak": "benchmarks.soak", "stages": "benchmarks.stages",
              "collector_plugin": "benchmarks.collector_plugin", "runners": "benchmarks.runners",
              "v3_v4": "benchmarks.v3_v4", "v4_library": "benchmarks.v4_library"}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        print(f"usage: python -m benchmarks {{{'|'.join(BENCHMARKS)}}} [args]", file=sys.stderr)
        sys.exit(2)
    importlib.import_module(BENCHMARKS[sys.argv[1]]).main(sys.argv[2:])


if __name__ == "__main__":
    main()
