#!/usr/bin/env bash
# ./run.sh          demo: emulated Prism Centrals + CloudForet, one collection, summary
# ./run.sh test     the whole test suite
# ./run.sh bench    the benchmarks (see benchmarks/README.md)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

ensure_venv() {
  if [ ! -x "$PY" ]; then
    echo "creating $VENV" >&2
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$VENV/.installed" ] || [ setup.py -nt "$VENV/.installed" ] \
     || ! "$PY" -c "import pipeline, apache_beam, spaceone.api, pytest" >/dev/null 2>&1; then
    echo "installing the project into $VENV (first run takes a minute)" >&2
    "$PY" -m pip install -q --upgrade pip >&2
    "$PY" -m pip install -q -e ".[test]" >&2
    touch "$VENV/.installed"
  fi
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

demo() {
  local dir="$ROOT/.run/demo"
  rm -rf "$dir" && mkdir -p "$dir"
  export PRISM_PASSWORD="demo-$RANDOM-$RANDOM"
  trap stop_emulators EXIT
  "$PY" -m emulators.prism --prism-centrals 2 --clusters 2 --hosts-per-cluster 3 --vms 400 \
      --port 0 --ready-file "$dir/prism.json" >"$dir/prism.log" 2>&1 &
  PIDS+=($!)
  wait_for "$dir/prism.json" "${PIDS[0]}" Prism
  "$PY" -m emulators.cloudforet --db "$dir/cloudforet.sqlite" --port 0 \
      --ready-file "$dir/cloudforet.json" >"$dir/cloudforet.log" 2>&1 &
  PIDS+=($!)
  wait_for "$dir/cloudforet.json" "${PIDS[1]}" CloudForet
  "$PY" -m emulators.demo --prism-ready "$dir/prism.json" --cloudforet-ready "$dir/cloudforet.json" \
      --out "$dir" > "$dir/env.sh"
  # shellcheck disable=SC1091
  . "$dir/env.sh"
  "$PY" -m pipeline --config "$dir/config.yaml" "$@"
}

cmd="${1:-demo}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo) ensure_venv; demo "$@" ;;
  test) ensure_venv; exec "$PY" -m pytest -q "$@" tests ;;
  bench) ensure_venv; exec "$PY" -m benchmarks "$@" ;;
  *) echo "usage: ./run.sh [demo|test|bench] [args...]" >&2; exit 2 ;;
esac
