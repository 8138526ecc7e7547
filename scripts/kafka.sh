#!/usr/bin/env bash
# scripts/kafka.sh — a real Apache Kafka 4.x broker for tests, from Maven Central.
#
#   scripts/kafka.sh start    provision (first run), start, wait until it answers,
#                             print the bootstrap address (host:port) on stdout
#   scripts/kafka.sh stop     stop it and wait; safe when it is not running
#   scripts/kafka.sh resume   start a stopped broker again on its kept log dir,
#                             ports and cluster id (a restart; print the address)
#   scripts/kafka.sh status   "running <addr> pid <pid>" (exit 0) or "not running" (exit 1)
#   scripts/kafka.sh addr     the bootstrap address (exit 1 when not running)
#
# The broker is one JVM in KRaft combined mode (broker + controller, node id 1)
# listening on 127.0.0.1 only. Its jars come from scripts/kafka/pom.xml via
# `mvn dependency:copy-dependencies`, so the only things a machine needs are
# Java 17+ and Maven with Maven Central reachable; later runs reuse the jars.
# Every start formats a fresh, empty log dir: tests never see old topics.
#
# Environment (all optional):
#   KAFKA_HOME_CACHE        cache dir for jars and the run dir   (default <repo>/.cache/kafka)
#   KAFKA_PORT              first broker port to try             (default 19092)
#   KAFKA_CONTROLLER_PORT   first controller port to try         (default 19093)
#   KAFKA_START_TIMEOUT     seconds to wait for readiness        (default 90)
#   KAFKA_HEAP              JVM heap                             (default 512m)
#   JAVA                    java binary                          (default java on PATH)
#
# Progress goes to stderr; stdout of `start` and `addr` is only the address, so
# `BROKERS=$(scripts/kafka.sh start)` works.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
POM_DIR="$SCRIPT_DIR/kafka"
CACHE=${KAFKA_HOME_CACHE:-$REPO_ROOT/.cache/kafka}
[[ $CACHE == /* ]] || CACHE="$PWD/$CACHE"
LIBS="$CACHE/libs"
RUN="$CACHE/run"
PIDFILE="$RUN/kafka.pid"
ADDRFILE="$RUN/bootstrap"
LOG="$RUN/broker.log"
OUT="$RUN/broker.out"
PROPS="$RUN/server.properties"
JAVA=${JAVA:-java}
HEAP=${KAFKA_HEAP:-512m}
TIMEOUT=${KAFKA_START_TIMEOUT:-90}

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# running prints the pid of our broker if it is alive, else fails. A pid file
# whose process is gone or is not our broker counts as not running.
running() {
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || { kill -0 "$pid" 2>/dev/null || return 1; echo "$pid"; return 0; }
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "kafka.Kafka $PROPS" || return 1
  echo "$pid"
}

# port_busy succeeds when something on 127.0.0.1 accepts connections on $1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints the first port >= $1 that nothing listens on and that is not $2.
free_port() {
  local p=$1 avoid=${2:-}
  for ((i = 0; i < 200; i++, p++)); do
    [[ $p == "$avoid" ]] && continue
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "no free port in $1..$p"
}

# with_lock runs "$@" holding the cache lock, so two concurrent starts (or a
# start and a stop) do not race on the pid file and the run dir.
with_lock() {
  mkdir -p "$CACHE"
  # The cache lives inside the repo by default; keep it out of git.
  [[ -f $CACHE/.gitignore ]] || printf '*\n' >"$CACHE/.gitignore"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.lock"
    flock 9
  fi
  "$@"
}

# provision resolves the broker jars into $LIBS unless the pom is unchanged
# since the last successful resolution.
provision() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need Java 17+)"
  local stamp want
  want=$(cksum <"$POM_DIR/pom.xml")
  stamp="$LIBS/.pom-cksum"
  if [[ -f $stamp && $(<"$stamp") == "$want" ]] && compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (Maven is needed once to fetch the Kafka jars)"
  say "fetching Apache Kafka jars from Maven Central into $LIBS (first run only)..."
  rm -rf "$LIBS.tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$POM_DIR/pom.xml" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >"$CACHE/mvn.log" 2>&1; then
    tail -n 40 "$CACHE/mvn.log" >&2
    die "mvn could not resolve the Kafka jars (log: $CACHE/mvn.log)"
  fi
  printf '%s\n' "$want" >"$LIBS.tmp/.pom-cksum"
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
}

# probe_cmd prints (one word a line) the command that runs Probe.java,
# compiled once into $CACHE/probe (saves ~1.5 s a start over source mode).
probe_cmd() {
  local dir="$CACHE/probe" want
  want=$(cat "$POM_DIR/Probe.java" "$LIBS/.pom-cksum" | cksum)
  if [[ ! -f $dir/.cksum || $(<"$dir/.cksum") != "$want" ]] && command -v javac >/dev/null 2>&1; then
    rm -rf "$dir"
    if javac -nowarn -cp "$LIBS/*" -d "$dir" "$POM_DIR/Probe.java" >&2; then
      printf '%s\n' "$want" >"$dir/.cksum"
    else
      rm -rf "$dir"
    fi
  fi
  if [[ -f $dir/.cksum && $(<"$dir/.cksum") == "$want" ]]; then
    printf '%s\n' -cp "$dir:$LIBS/*" Probe
  else
    printf '%s\n' -cp "$LIBS/*" "$POM_DIR/Probe.java"
  fi
}

# cluster_id prints a random Kafka Uuid (16 bytes, URL-safe base64, no
# padding) that does not start with '-', which the CLI would read as a flag.
cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* || ${#id} -ne 22 ]] || { echo "$id"; return; }
  done
}

write_props() {
  local port=$1 cport=$2
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/data

# One broker: every internal topic at replication factor 1 / min ISR 1.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests create their topics explicitly and want groups to form at once;
# fail-over tests use short group sessions and need timed-out transactions
# aborted promptly (defaults: 6 s minimum session, 10 s abort sweep).
auto.create.topics.enable=false
num.partitions=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000

# Small machine: few threads, small cleaner buffer (it counts against the heap).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
}

log_tail() {
  say "--- last lines of $LOG ---"
  tail -n 40 "$LOG" >&2 2>/dev/null || true
  if [[ -s $OUT ]]; then
    say "--- last lines of $OUT ---"
    tail -n 20 "$OUT" >&2 || true
  fi
}

do_start() {
  local pid
  if pid=$(running); then
    if [[ -f $ADDRFILE ]]; then
      say "already running (pid $pid)"
      cat "$ADDRFILE"
      return 0
    fi
    say "found a broker (pid $pid) whose start never finished; restarting it"
    do_stop
  fi
  provision

  local port cport cid cp t0 now
  port=$(free_port "${KAFKA_PORT:-19092}")
  cport=$(free_port "${KAFKA_CONTROLLER_PORT:-19093}" "$port")
  rm -rf "$RUN"
  mkdir -p "$RUN/data"
  write_props "$port" "$cport"
  cp="$LIBS/*"
  local jvm=(-Xms128m "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$POM_DIR/log4j2.xml" "-Drustorium.kafka.log=$LOG")
  local probe
  mapfile -t probe < <(probe_cmd)

  cid=$(cluster_id)
  # The formatter is short-lived: C1 only starts it faster.
  if ! "$JAVA" "${jvm[@]}" -XX:TieredStopAtLevel=1 -cp "$cp" kafka.tools.StorageTool format --standalone \
      -t "$cid" -c "$PROPS" >"$RUN/format.out" 2>&1; then
    cat "$RUN/format.out" >&2
    die "formatting KRaft storage failed"
  fi

  launch "$port" "$cp" "${probe[@]}"
}

# launch starts the JVM on $PROPS (port $1, classpath $2, then the probe
# command), waits until the broker answers and writes the address file.
launch() {
  local port=$1 cp=$2 pid t0 now
  shift 2
  local probe=("$@")
  local jvm=(-Xms128m "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$POM_DIR/log4j2.xml" "-Drustorium.kafka.log=$LOG")
  t0=$SECONDS
  nohup "$JAVA" "${jvm[@]}" -cp "$cp" kafka.Kafka "$PROPS" >"$OUT" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  say "started broker pid $pid on 127.0.0.1:$port, waiting up to ${TIMEOUT}s..."

  # Wait for the port, then for the broker to register (Probe asks for the
  # cluster's brokers through the admin API), checking the JVM stays alive.
  local next=$((t0 + 5))
  while ! port_busy "$port"; do
    now=$SECONDS
    if ! kill -0 "$pid" 2>/dev/null; then
      log_tail; rm -f "$PIDFILE"; die "broker exited during startup"
    fi
    if ((now - t0 >= TIMEOUT)); then
      log_tail; do_stop; die "broker did not open 127.0.0.1:$port within ${TIMEOUT}s"
    fi
    if ((now >= next)); then say "waiting for 127.0.0.1:$port ($((now - t0))s)"; next=$((now + 5)); fi
    sleep 0.2
  done
  local left=$((TIMEOUT - (SECONDS - t0)))
  ((left > 1)) || left=2
  if ! "$JAVA" -Xmx64m -XX:TieredStopAtLevel=1 "-Dlog4j2.configurationFile=$POM_DIR/log4j2.xml" \
      "-Drustorium.kafka.log=$RUN/probe.log" "${probe[@]}" \
      "127.0.0.1:$port" "$((left * 1000))" >"$RUN/probe.out"; then
    cat "$RUN/probe.out" >&2
    log_tail; do_stop; die "broker did not become ready within ${TIMEOUT}s"
  fi
  kill -0 "$pid" 2>/dev/null || { log_tail; die "broker exited during startup"; }
  echo "127.0.0.1:$port" >"$ADDRFILE"
  say "ready at 127.0.0.1:$port after $((SECONDS - t0))s (log: $LOG)"
  cat "$ADDRFILE"
}

# do_resume starts the stopped broker again on its kept log dir, ports and
# cluster id (a restart, for fault scenarios: kill: broker with --broker-ctl).
do_resume() {
  local pid port
  if pid=$(running); then
    say "already running (pid $pid)"
    cat "$ADDRFILE"
    return 0
  fi
  [[ -f $PROPS && -d $RUN/data ]] || die "nothing to resume: no stopped broker in $RUN (use start)"
  port=$(sed -n 's|^advertised.listeners=PLAINTEXT://127.0.0.1:||p' "$PROPS")
  [[ $port =~ ^[0-9]+$ ]] || die "no port in $PROPS"
  port_busy "$port" && die "port $port is taken: cannot resume on it"
  provision
  local probe
  mapfile -t probe < <(probe_cmd)
  launch "$port" "$LIBS/*" "${probe[@]}"
}

do_stop() {
  local pid
  if ! pid=$(running); then
    rm -f "$PIDFILE" "$ADDRFILE"
    say "not running"
    return 0
  fi
  say "stopping broker pid $pid..."
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 300; i++)); do # 30 s for a clean shutdown
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "broker did not stop in 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDFILE" "$ADDRFILE"
  say "stopped"
}

do_status() {
  local pid
  if pid=$(running) && [[ -f $ADDRFILE ]]; then
    echo "running $(<"$ADDRFILE") pid $pid"
  else
    echo "not running"
    return 1
  fi
}

do_addr() {
  running >/dev/null && [[ -f $ADDRFILE ]] || die "not running"
  cat "$ADDRFILE"
}

case "${1:-}" in
start) with_lock do_start ;;
resume) with_lock do_resume ;;
stop) with_lock do_stop ;;
status) do_status ;;
addr) do_addr ;;
*)
  echo "usage: $0 start|stop|resume|status|addr" >&2
  exit 2
  ;;
esac
