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
# ./run.sh flink    the demo on a standalone Flink cluster (JobManager + TaskManager, 2 slots) with an
#                   EXTERNAL SDK worker pool, started and stopped here (README, "Flink")
# ./run.sh flink-cluster   the Flink cluster and the worker pool alone: started, checked, stopped
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
  local config=()  # the plugins its registry holds and its supervisor runs (plugins_config)
  [ -f "$1/cloudforet-config.yaml" ] && config=(--config "$1/cloudforet-config.yaml")
  "$PY" -m emulators.cloudforet --db "$1/cloudforet.sqlite" --port 0 --cost-create-unsupported --per-service-ports \
      "${config[@]}" --ready-file "$1/cloudforet.json" >"$1/cloudforet.log" 2>&1 &
  PIDS+=($!)
  wait_for "$1/cloudforet.json" "$!" CloudForet
}

start_plugin() {  # start_plugin DIR PROTOCOL: a plugin as its image runs it (no --store: the data
                  # sources' options name the stores), on a free port instead of the supervisor's 50051
  "$PY" -m plugin "$2" --port 0 --ready-file "$1/plugin-$2.json" >"$1/plugin-$2.log" 2>&1 &
  PIDS+=($!)
  wait_for "$1/plugin-$2.json" "$!" "$2 plugin"
}

start_plugins() {  # start_plugins DIR: one server per protocol, as CloudForet calls them
  start_plugin "$1" monitoring
  start_plugin "$1" cost
  start_plugin "$1" collector
}

plugins_config() {  # plugins_config DIR: the emulated registry holds the plugin images, its supervisor
                    # runs each where DIR/plugin-<key>.json says (before start_cloudforet)
  "$PY" -m emulators.plugins config --ready-dir "$1" --out "$1/cloudforet-config.yaml"
}

setup_plugins() {  # setup_plugins DIR: python -m pipeline setup --plugins (what exists is left alone)
  echo "== python -m pipeline setup --plugins (Repository plugins, Collector, monitoring and cost data sources) =="
  "$PY" -m pipeline setup --config "$1/config.yaml" --plugins
}

readback() {  # readback DIR: what CloudForet shows, through its own read APIs
  echo
  echo "== CloudForet reads back (the data sources setup --plugins registered; costs synced from the plugin) =="
  "$PY" -m emulators.readback --cloudforet-ready "$1/cloudforet.json" --metric-store "$1/metrics"
}

collector_job() {  # collector_job DIR: CloudForet's Inventory runs the Collector setup --plugins created
                   # (Jobs, JobTasks), its plugin reached through the Repository and the plugin service
  echo
  echo "== CloudForet's Inventory runs the collector plugin: Jobs and JobTasks (collector history) =="
  "$PY" -m emulators.collector_demo --cloudforet-ready "$1/cloudforet.json" --jobs 2
}

demo_env() {  # demo_env DIR: the emulators and plugins started, the config written (its variables exported
              # here, before any worker starts), CloudForet set up as an operator would (setup, setup --plugins)
  start_prism "$1"
  plugins_config "$1"
  start_cloudforet "$1"
  start_plugins "$1"
  "$PY" -m emulators.demo --prism-ready "$1/prism.json" --cloudforet-ready "$1/cloudforet.json" \
      --out "$1" > "$1/env.sh"
  # shellcheck disable=SC1091
  . "$1/env.sh"
  echo "== python -m pipeline setup (provider, schemas, a service account per Prism Central, types, Metric Explorer) =="
  "$PY" -m pipeline setup --config "$1/config.yaml"
  setup_plugins "$1"
}

demo() {
  local dir="$ROOT/.run/demo"
  rm -rf "$dir" && mkdir -p "$dir"
  export PRISM_PASSWORD="demo-$RANDOM-$RANDOM"
  trap stop_emulators EXIT
  demo_env "$dir"
  echo "== python -m pipeline setup, again =="
  "$PY" -m pipeline setup --config "$dir/config.yaml"
  echo "== python -m pipeline (accounts_from: service_accounts) =="
  "$PY" -m pipeline --config "$dir/config.yaml" "$@"
  readback "$dir"
  "$PY" -m emulators.showcase --cloudforet-ready "$dir/cloudforet.json"
  collector_job "$dir"
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
  plugins_config "$dir"
  start_cloudforet "$dir"
  start_plugins "$dir"
  echo '{"prism_centrals": []}' > "$dir/prism.json"
  "$PY" -m emulators.demo --prism-ready "$dir/prism.json" --cloudforet-ready "$dir/cloudforet.json" \
      --out "$dir" > "$dir/env.sh"
  # shellcheck disable=SC1091
  . "$dir/env.sh"
  setup_plugins "$dir"
  "$PY" -m pipeline --config "$dir/config.yaml" --source snapshot --snapshot "$demo_dir/snapshots/*" "$@"
  readback "$dir"
}

# -- Flink: a standalone cluster from Flink's own jars, Beam's job server jar, an EXTERNAL worker pool
FLINK_VERSION=2.2.1   # a Flink that Beam 2.77's job server supports (it publishes 1.19, 1.20, 2.0, 2.1, 2.2)
FLINK_MINOR=${FLINK_VERSION%.*}
FLINK_DIR="$ROOT/.flink"  # the jars, fetched once (ignored by git; CI keeps it between steps)
FLINK_HOME="$FLINK_DIR/flink-$FLINK_VERSION"

beam_version() { "$PY" -c 'import importlib.metadata as m; print(m.version("apache-beam"))'; }

flink_job_server_jar() {  # prints the job server jar's path, fetched with Maven if need be
  local beam artifact jar
  beam=$(beam_version)
  artifact="org.apache.beam:beam-runners-flink-$FLINK_MINOR-job-server:$beam"
  if [ -n "${FLINK_JOB_SERVER_JAR:-}" ]; then
    [ -s "$FLINK_JOB_SERVER_JAR" ] || { echo "error: FLINK_JOB_SERVER_JAR=$FLINK_JOB_SERVER_JAR: no such jar" >&2; return 1; }
    echo "$FLINK_JOB_SERVER_JAR"
    return 0
  fi
  jar="$FLINK_DIR/beam-runners-flink-$FLINK_MINOR-job-server-$beam.jar"
  if [ ! -s "$jar" ]; then
    mkdir -p "$FLINK_DIR"
    echo "fetching Beam's Flink job server $artifact with Maven" >&2
    if ! mvn -q -B -U dependency:copy -Dartifact="$artifact" -DoutputDirectory="$FLINK_DIR" \
         >"$FLINK_DIR/mvn.log" 2>&1; then
      echo "error: Maven could not fetch Beam's Flink job server $artifact (the apache-beam version" \
           "the project pins): $(grep -oE '(Could not (find|transfer|resolve)|Unable to find)[^[]*' \
                                 "$FLINK_DIR/mvn.log" | head -n 1)" >&2
      echo "  Full log: $FLINK_DIR/mvn.log. With that jar from elsewhere, run again with" \
           "FLINK_JOB_SERVER_JAR=/path/to/beam-runners-flink-$FLINK_MINOR-job-server-$beam.jar" >&2
      return 1
    fi
  fi
  echo "$jar"
}

flink_dist() {  # Flink's jars, from PyPI's apache-flink-libraries (Maven serves no flink-dist)
  [ -s "$FLINK_HOME/lib/flink-dist-$FLINK_VERSION.jar" ] && return 0
  local tmp
  mkdir -p "$FLINK_DIR"
  tmp=$(mktemp -d "$FLINK_DIR/download.XXXXXX")
  echo "fetching Flink $FLINK_VERSION's jars (apache-flink-libraries, 300 MB, once)" >&2
  "$PY" -m pip download -q --no-deps -d "$tmp" "apache-flink-libraries==$FLINK_VERSION" >&2
  rm -rf "$FLINK_HOME"
  mkdir -p "$FLINK_HOME/lib"
  "$PY" -c 'import os, sys, zipfile
wheel, lib = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("pyflink/lib/") or name == "pyflink/bin/bash-java-utils.jar":
            with z.open(name) as src, open(os.path.join(lib, os.path.basename(name)), "wb") as out:
                out.write(src.read())' "$tmp"/apache_flink_libraries-*.whl "$FLINK_HOME/lib"
  rm -rf "$tmp"
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

flink_resource_params() {  # flink_resource_params CONF_DIR JM|TM: line 1 JVM options, line 2 dynamic properties
  java -cp "$FLINK_HOME/lib/*" org.apache.flink.runtime.util.bash.BashJavaUtils "GET_$2_RESOURCE_PARAMS" \
      --configDir "$1" 2>/dev/null | sed -n 's/^BASH_JAVA_UTILS_EXEC_RESULT://p'
}

write_flink_config() {  # write_flink_config CONF_DIR TMP_DIR: small heaps (a shared machine); a failed task restarts
  mkdir -p "$1" "$2"
  {
    echo "jobmanager:"
    echo "  rpc: {address: localhost, port: $(free_port)}"
    echo "  bind-host: localhost"
    echo "  memory: {process: {size: 768m}}"
    echo "taskmanager:"
    echo "  host: localhost"
    echo "  bind-host: localhost"
    echo "  numberOfTaskSlots: 2"
    echo "  memory: {process: {size: 1280m}, managed: {fraction: 0.1}}"
    echo "rest: {address: localhost, bind-address: localhost, port: $FLINK_REST_PORT}"
    echo "parallelism: {default: 2}"
    echo "restart-strategy: {type: fixed-delay, fixed-delay: {attempts: 3, delay: 1 s}}"
    echo "io: {tmp: {dirs: $2}}"
  } > "$1/config.yaml"
}

start_flink_process() {  # start_flink_process CONF_DIR LOG_DIR JM|TM MAIN_CLASS NAME: as Flink's own scripts do
  local params jvm dyn
  params=$(flink_resource_params "$1" "$3")
  jvm=$(sed -n 1p <<<"$params")
  dyn=$(sed -n 2p <<<"$params")
  [ -n "$jvm" ] || { echo "error: Flink could not size the $5's memory from $1/config.yaml" >&2; return 1; }
  # shellcheck disable=SC2086  # word splitting wanted: the options as BashJavaUtils printed them
  java $jvm -Dlog.file="$2/$5.log" -cp "$FLINK_HOME/lib/*" "$4" --configDir "$1" $dyn >"$2/$5.out" 2>&1 &
  PIDS+=($!)
}

FLINK_REST_PORT=
FLINK_POOL_PORT=
POOL_PID=
start_flink() {  # start_flink DIR: JobManager, TaskManager (2 slots), SDK worker pool; waits until ready
  local dir="$1" overview="" p
  FLINK_REST_PORT=$(free_port)
  FLINK_POOL_PORT=$(free_port)
  mkdir -p "$dir/flink-log"
  write_flink_config "$dir/flink-conf" "$dir/flink-tmp"
  start_flink_process "$dir/flink-conf" "$dir/flink-log" JM \
      org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint jobmanager
  start_flink_process "$dir/flink-conf" "$dir/flink-log" TM \
      org.apache.flink.runtime.taskexecutor.TaskManagerRunner taskmanager
  # The SDK workers' pool beside the TaskManager: the workers it starts inherit its environment (the
  # secrets' variables) and run `python` from PATH: this virtualenv's. Its own process group, so that
  # stopping it stops its workers.
  PATH="$VENV/bin:$PATH" setsid "$PY" -m apache_beam.runners.worker.worker_pool_main \
      --service_port "$FLINK_POOL_PORT" >"$dir/flink-log/worker-pool.log" 2>&1 &
  POOL_PID=$!
  PIDS+=("$POOL_PID")
  for _ in $(seq 1 900); do
    overview=$(curl -s "http://localhost:$FLINK_REST_PORT/overview" || true)
    case "$overview" in *'"slots-total":2'*) break ;; esac
    for p in "${PIDS[@]}"; do
      kill -0 "$p" 2>/dev/null || { echo "error: a Flink process exited; see $dir/flink-log" >&2; return 1; }
    done
    sleep 0.1
  done
  case "$overview" in
    *'"slots-total":2'*) ;;
    *) echo "error: the Flink cluster did not get ready in 90s; see $dir/flink-log" >&2; return 1 ;;
  esac
  echo "Flink $FLINK_VERSION at localhost:$FLINK_REST_PORT: $overview" >&2
  echo "SDK worker pool at localhost:$FLINK_POOL_PORT" >&2
}

stop_flink_and_emulators() {
  if [ -n "$POOL_PID" ]; then kill -- "-$POOL_PID" 2>/dev/null || true; fi  # the pool and its SDK workers
  stop_emulators  # and the JobManager and TaskManager
}

flink_cluster() {  # the cluster and the worker pool alone: started, checked, stopped
  local dir="$ROOT/.run/flink-cluster"
  flink_dist
  rm -rf "$dir" && mkdir -p "$dir"
  trap stop_flink_and_emulators EXIT
  start_flink "$dir"
}

flink() {  # the demo on Flink: ./run.sh flink [pipeline args...]
  local dir="$ROOT/.run/flink" jar
  jar=$(flink_job_server_jar)  # first: nothing is worth starting without it
  flink_dist
  rm -rf "$dir" && mkdir -p "$dir"
  export PRISM_PASSWORD="demo-$RANDOM-$RANDOM"
  trap stop_flink_and_emulators EXIT
  demo_env "$dir"  # the secrets' variables are exported before the worker pool starts: its workers have them
  start_flink "$dir"
  "$PY" -m pipeline --config "$dir/config.yaml" --runner FlinkRunner --flink_master "localhost:$FLINK_REST_PORT" \
      --flink_version "$FLINK_MINOR" --flink_job_server_jar "$jar" --parallelism 2 \
      --environment_type EXTERNAL --environment_config "localhost:$FLINK_POOL_PORT" "$@"
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
  flink) ensure_venv; flink "$@" ;;
  flink-cluster) ensure_venv; flink_cluster ;;
  *) echo "usage: ./run.sh [demo|replay|test [unit|integration]|conformance|bench|lint|constraints|flink|flink-cluster]" \
          "[args...]" >&2
     exit 2 ;;
esac
