#!/usr/bin/env bash
# ./run.sh          demo: emulated Prism Centrals + CloudForet; setup (twice: the second changes nothing),
#                   one collection of the service accounts setup made, what CloudForet shows
# ./run.sh replay   replay the demo's snapshot into a fresh CloudForet emulator
# ./run.sh test     the whole test suite: tests/unit and tests/integration (tests/conformance is not part of it)
# ./run.sh test unit         the fast tests alone (no emulators, no whole runs; under a minute)
# ./run.sh test integration  the tests against the emulators and the whole runs
# ./run.sh conformance  the collector against the REAL identity and cost-analysis services
#                   (their virtualenvs are built once under .conformance/, then reused)
# ./run.sh bench    the benchmarks (see benchmarks/README.md)
# ./run.sh lint     ruff check and mypy, as configured in pyproject.toml
# ./run.sh constraints   regenerate constraints.txt (every transitive pin) from a clean virtualenv
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

# The collector (with its test extra) and the emulators, a distribution of their own
# (emulators/pyproject.toml), both editable; every transitive version from constraints.txt.
ensure_venv() {
  if [ ! -x "$PY" ]; then
    echo "creating $VENV" >&2
    python3 -m venv "$VENV"
  fi
  local f stale=
  for f in setup.py pyproject.toml emulators/pyproject.toml constraints.txt; do
    [ "$f" -nt "$VENV/.installed" ] && stale=1
  done
  if [ ! -f "$VENV/.installed" ] || [ -n "$stale" ] \
     || ! "$PY" -c "import pipeline, emulators, apache_beam, spaceone.api, pytest" >/dev/null 2>&1; then
    echo "installing the project into $VENV (first run takes a minute)" >&2
    "$PY" -m pip install -q --upgrade pip >&2
    "$PY" -m pip install -q -c constraints.txt -e ".[test]" -e ./emulators >&2
    touch "$VENV/.installed"
  fi
}

lint() {  # ruff and mypy, pinned by the lint extra, with pyproject.toml's settings; both always run
  if ! "$PY" -m ruff --version >/dev/null 2>&1 || ! "$PY" -m mypy --version >/dev/null 2>&1; then
    "$PY" -m pip install -q -c constraints.txt -e ".[test,lint]" >&2
  fi
  local rc=0
  echo "== ruff check" >&2
  "$PY" -m ruff check "$@" . || rc=1
  echo "== mypy" >&2
  "$PY" -m mypy || rc=1
  return "$rc"
}

constraints() {  # constraints.txt: what a clean virtualenv resolves for the direct pins alone
  local tmp
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/collector-constraints.XXXXXX")
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q --upgrade pip >&2
  "$tmp/venv/bin/pip" install -q -e ".[test,lint]" -e ./emulators >&2
  {
    echo "# Every transitive dependency the SDK image (Dockerfile) and CI (.ci/run, ./run.sh) install, pinned."
    echo "# Used as: pip install -c constraints.txt ...   The direct pins live in pyproject.toml and"
    echo "# emulators/pyproject.toml; after changing one, regenerate this file: ./run.sh constraints"
    echo "# (a clean $("$tmp/venv/bin/python" -c 'import platform; print("Python", platform.python_version())') virtualenv," \
         "as the SDK image's, installs the collector with its test and lint extras and the emulators; pip freeze)."
    "$tmp/venv/bin/pip" freeze --exclude-editable | LC_ALL=C sort -f
  } > "$tmp/constraints.txt"
  mv "$tmp/constraints.txt" constraints.txt
  rm -rf "$tmp"
  echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) pins)" >&2
}

wait_for() {  # wait_for FILE PID NAME
  for _ in $(seq 1 300); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { echo "error: the $3 emulator exited before it was ready" >&2; return 1; }
    sleep 0.1
  done
  echo "error: the $3 emulator did not get ready in 30s" >&2
  return 1
}

PIDS=()
stop_emulators() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

start_prism() {  # start_prism DIR
  "$PY" -m emulators.prism --prism-centrals 2 --clusters 2 --hosts-per-cluster 3 --vms 400 \
      --port 0 --ready-file "$1/prism.json" >"$1/prism.log" 2>&1 &
  PIDS+=($!)
  wait_for "$1/prism.json" "$!" Prism
}

start_cloudforet() {  # start_cloudforet DIR: answers Cost.create like current servers (not supported),
                      # each service also on a port of its own, as a real deployment serves them
  "$PY" -m emulators.cloudforet --db "$1/cloudforet.sqlite" --port 0 --cost-create-unsupported --per-service-ports \
      --ready-file "$1/cloudforet.json" >"$1/cloudforet.log" 2>&1 &
  PIDS+=($!)
  wait_for "$1/cloudforet.json" "$!" CloudForet
}

start_plugin() {  # start_plugin DIR PROTOCOL: the collector's monitoring or cost data-source plugin
  "$PY" -m plugin "$2" --port 0 --store "$1" --ready-file "$1/plugin-$2.json" >"$1/plugin-$2.log" 2>&1 &
  PIDS+=($!)
  wait_for "$1/plugin-$2.json" "$!" "$2 plugin"
}

start_plugins() {  # start_plugins DIR: one server per protocol, as CloudForet calls them
  start_plugin "$1" monitoring
  start_plugin "$1" cost
}

endpoint_of() {  # endpoint_of READY_FILE
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$1"
}

readback() {  # readback DIR: what CloudForet shows, through its own read APIs
  echo
  echo "== CloudForet reads back (data sources registered, costs synced from the plugin) =="
  "$PY" -m emulators.readback --cloudforet-ready "$1/cloudforet.json" \
      --monitoring-endpoint "$(endpoint_of "$1/plugin-monitoring.json")" \
      --cost-endpoint "$(endpoint_of "$1/plugin-cost.json")" --metric-store "$1/metrics"
}

demo() {
  local dir="$ROOT/.run/demo"
  rm -rf "$dir" && mkdir -p "$dir"
  export PRISM_PASSWORD="demo-$RANDOM-$RANDOM"
  trap stop_emulators EXIT
  start_prism "$dir"
  start_cloudforet "$dir"
  start_plugins "$dir"
  "$PY" -m emulators.demo --prism-ready "$dir/prism.json" --cloudforet-ready "$dir/cloudforet.json" \
      --out "$dir" > "$dir/env.sh"
  # shellcheck disable=SC1091
  . "$dir/env.sh"
  echo "== python -m pipeline setup (provider, schemas, a service account per Prism Central, types, Metric Explorer) =="
  "$PY" -m pipeline setup --config "$dir/config.yaml"
  echo "== python -m pipeline setup, again =="
  "$PY" -m pipeline setup --config "$dir/config.yaml"
  echo "== python -m pipeline (accounts_from: service_accounts) =="
  "$PY" -m pipeline --config "$dir/config.yaml" "$@"
  readback "$dir"
  "$PY" -m emulators.showcase --cloudforet-ready "$dir/cloudforet.json"
}

replay() {
  # Replays the demo's own snapshots into a CloudForet that has never seen them.
  local demo_dir="$ROOT/.run/demo" dir="$ROOT/.run/replay"
  if ! ls "$demo_dir"/snapshots/*/manifest.json >/dev/null 2>&1; then
    echo "no demo snapshot yet: running the demo first" >&2
    ( demo )
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  trap stop_emulators EXIT
  start_cloudforet "$dir"
  start_plugins "$dir"
  echo '{"prism_centrals": []}' > "$dir/prism.json"
  "$PY" -m emulators.demo --prism-ready "$dir/prism.json" --cloudforet-ready "$dir/cloudforet.json" \
      --out "$dir" > "$dir/env.sh"
  # shellcheck disable=SC1091
  . "$dir/env.sh"
  "$PY" -m pipeline --config "$dir/config.yaml" --source snapshot --snapshot "$demo_dir/snapshots/*" "$@"
  readback "$dir"
}

cmd="${1:-demo}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo) ensure_venv; demo "$@" ;;
  replay) ensure_venv; replay "$@" ;;
  test)
    ensure_venv
    suites=(tests/unit tests/integration)  # tests/conformance: ./run.sh conformance
    case "${1:-}" in unit|integration) suites=("tests/$1"); shift ;; esac
    exec "$PY" -m pytest -q "$@" "${suites[@]}" ;;
  conformance)
    ensure_venv
    "$PY" tests/conformance/venvs.py >/dev/null  # builds a missing virtualenv (minutes), else reuses it
    exec "$PY" -m pytest -q -p no:cacheprovider "$@" tests/conformance ;;
  bench) ensure_venv; exec "$PY" -m benchmarks "$@" ;;
  lint) ensure_venv; lint "$@" ;;
  constraints) constraints ;;
  *) echo "usage: ./run.sh [demo|replay|test [unit|integration]|conformance|bench|lint|constraints] [args...]" >&2
     exit 2 ;;
esac
