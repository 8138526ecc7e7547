#!/usr/bin/env bash
# A cluster of rustorium nodes and a split load over plain ssh: no
# orchestrator, only ssh, scp and the rustorium binary.
#
#   deploy/ssh/cluster.sh HOSTS up      keys, cluster file, copy, start the nodes
#   deploy/ssh/cluster.sh HOSTS load    N workers at one --start-at, fetch, merge
#   deploy/ssh/cluster.sh HOSTS down    stop the nodes (SIGTERM)
#   deploy/ssh/cluster.sh HOSTS all     up, then load
#
# HOSTS is a hosts file (hosts.example). The environment sets the rest:
#   BROKERS     the Kafka/Redpanda seed brokers every node shares, host:port,…
#               (required for up: an existing cluster; this script runs none)
#   SCENARIO    the scenario the workers split (scenarios/default.yaml)
#   BIN         the rustorium binary run here, for keygen and the merge
#               (bin/rustorium: make build)
#   REMOTE_BIN  the binary copied to the hosts (BIN; build it for their OS and
#               CPU, e.g. GOOS=linux GOARCH=amd64 go build -o … ./cmd/rustorium)
#   SHARDS      the cluster's shard count (4)
#   DIR         the working directory on every host (rustorium-ssh)
#   OUT         where this machine keeps keys, the cluster file and the
#               reports (out/ssh)
#   LEAD        seconds from now to the load's start (60)
#   BIND        where nodes listen: any (0.0.0.0, the default) or addr (the
#               node's address of the hosts file: several nodes on one host)
#
# Ports: QUIC 7400/udp between all hosts, the API 7480/tcp from the load
# hosts, metrics 9400/tcp; every host reaches the brokers. Topics: create
# them before the first up with 3 replicas (the commands are in
# deploy/k8s/topics.yaml, prefix ssh-); nodes create missing ones with one.
set -euo pipefail

usage() {
	echo "usage: $0 HOSTS up|load|down|all" >&2
	exit 2
}
[ $# -eq 2 ] || usage
hosts_file=$1
action=$2

SCENARIO=${SCENARIO:-scenarios/default.yaml}
BIN=${BIN:-bin/rustorium}
REMOTE_BIN=${REMOTE_BIN:-$BIN}
SHARDS=${SHARDS:-4}
DIR=${DIR:-rustorium-ssh}
OUT=${OUT:-out/ssh}
LEAD=${LEAD:-60}
BIND=${BIND:-any}

# The hosts file: each node's ssh host and reachable address; the load hosts.
node_ssh=()
node_addr=()
load_ssh=()
while read -r role host addr _; do
	case $role in
	'' | '#'*) continue ;;
	node)
		node_ssh+=("$host")
		node_addr+=("${addr:-${host#*@}}")
		;;
	load) load_ssh+=("$host") ;;
	*)
		echo "$hosts_file: unknown role $role (node or load)" >&2
		exit 2
		;;
	esac
done <"$hosts_file"
[ ${#node_ssh[@]} -gt 0 ] || {
	echo "$hosts_file: no node hosts" >&2
	exit 2
}

log() { echo "cluster.sh: $*" >&2; }

# remote HOST COMMAND runs COMMAND in DIR on HOST.
remote() {
	local host=$1
	shift
	ssh -o BatchMode=yes "$host" "cd '$DIR' && $*"
}

# start_at prints the RFC 3339 time $1 seconds from now (GNU or BSD date).
start_at() {
	local t=$(($(date +%s) + $1))
	date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$t" +%Y-%m-%dT%H:%M:%SZ
}

# keys makes node-I's key under OUT/keys (kept, with its public key in
# node-I.pub, if both exist: a rerun keeps the cluster's identities) and
# prints the cluster file's nodes section.
keys() {
	mkdir -p "$OUT/keys"
	local i id
	for i in "${!node_ssh[@]}"; do
		id=node-$((i + 1))
		if [ ! -s "$OUT/keys/$id.key" ] || [ ! -s "$OUT/keys/$id.pub" ]; then
			"$BIN" node keygen --force --out "$OUT/keys/$id.key" >"$OUT/keys/$id.pub"
		fi
		printf '  - {id: %s, key: %s, addr: "%s:7400"}\n' "$id" "$(cat "$OUT/keys/$id.pub")" "${node_addr[$i]}"
	done
}

# cluster_file writes OUT/cluster.yaml.
cluster_file() {
	: "${BROKERS:?set BROKERS to the Kafka/Redpanda brokers (host:port,…)}"
	{
		echo "chain_id: 1   # rustorium loadgen signs for chain 1"
		echo "shards: $SHARDS"
		echo "brokers: [$BROKERS]"
		echo "topic_prefix: ssh-"
		echo "leadership: {session_timeout: 6s, transaction_timeout: 10s}"
		echo "nodes:"
		keys
	} >"$OUT/cluster.yaml"
	log "wrote $OUT/cluster.yaml (${#node_ssh[@]} nodes, $SHARDS shards)"
}

# copy HOST FILE... copies files into DIR on HOST.
copy() {
	local host=$1
	shift
	ssh -o BatchMode=yes "$host" "mkdir -p '$DIR'"
	scp -q -o BatchMode=yes "$@" "$host:$DIR/"
}

up() {
	mkdir -p "$OUT"
	cluster_file
	local i id host bind
	for i in "${!node_ssh[@]}"; do
		id=node-$((i + 1))
		host=${node_ssh[$i]}
		log "$id: copying to $host"
		copy "$host" "$REMOTE_BIN" "$OUT/cluster.yaml" "$OUT/keys/$id.key"
		[ "$(basename "$REMOTE_BIN")" = rustorium ] || remote "$host" "mv '$(basename "$REMOTE_BIN")' rustorium"
		bind=0.0.0.0
		[ "$BIND" = any ] || bind=${node_addr[$i]}
		log "$id: starting on $host"
		# Only the node in the background, so that $! is its pid.
		remote "$host" "chmod 0600 $id.key && { nohup ./rustorium node --cluster cluster.yaml --id $id --key-file $id.key \
			--data data-$id --listen $bind:7400 --api $bind:7480 --metrics $bind:9400 \
			>node.log 2>&1 </dev/null & echo \$! >node.pid; }"
	done
	# A node logs "node running" once it serves (its shards are then
	# replicated; blocks commit when a quorum of nodes runs).
	for i in "${!node_ssh[@]}"; do
		host=${node_ssh[$i]}
		local tries=0
		until remote "$host" "grep -q 'node running' node.log"; do
			tries=$((tries + 1))
			if [ "$tries" -ge 60 ] || ! remote "$host" "kill -0 \$(cat node.pid)" 2>/dev/null; then
				log "node-$((i + 1)) on $host did not start; its log:"
				remote "$host" "tail -n 30 node.log" >&2 || true
				exit 1
			fi
			sleep 1
		done
		log "node-$((i + 1)) on $host is running"
	done
}

down() {
	local i host
	for i in "${!node_ssh[@]}"; do
		host=${node_ssh[$i]}
		log "node-$((i + 1)): stopping on $host"
		remote "$host" "[ ! -f node.pid ] || kill \$(cat node.pid) 2>/dev/null || true; rm -f node.pid" || true
	done
}

load() {
	local n=${#load_ssh[@]}
	[ "$n" -gt 0 ] || {
		log "$hosts_file: no load hosts"
		exit 2
	}
	mkdir -p "$OUT"
	local i w host node at
	for i in "${!load_ssh[@]}"; do
		host=${load_ssh[$i]}
		log "worker $((i + 1))/$n: copying to $host"
		copy "$host" "$REMOTE_BIN" "$SCENARIO"
		[ "$(basename "$REMOTE_BIN")" = rustorium ] || remote "$host" "mv '$(basename "$REMOTE_BIN")' rustorium"
	done
	at=$(start_at "$LEAD")
	log "the load starts at $at"
	# Worker I drives node (I-1) mod nodes, all at the same instant.
	local pids=()
	for i in "${!load_ssh[@]}"; do
		w=$((i + 1))
		host=${load_ssh[$i]}
		node=${node_addr[$((i % ${#node_addr[@]}))]}
		remote "$host" "rm -rf w$w && ./rustorium loadgen '$(basename "$SCENARIO")' --target '$node:7400' --api 'http://$node:7480' \
			--worker $w/$n --start-at $at --out w$w >loadgen-w$w.log 2>&1" &
		pids+=($!)
	done
	# Status 3 is a share that failed a check: the merge judges the whole load.
	local failed=0 rc
	for i in "${!pids[@]}"; do
		rc=0
		wait "${pids[$i]}" || rc=$?
		log "worker $((i + 1))/$n: rustorium loadgen exited $rc"
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
			remote "${load_ssh[$i]}" "tail -n 30 loadgen-w$((i + 1)).log" >&2 || true
			failed=1
		fi
	done
	[ "$failed" -eq 0 ] || exit 1
	local dirs=()
	for i in "${!load_ssh[@]}"; do
		w=$((i + 1))
		rm -rf "$OUT/w$w"
		scp -q -r -o BatchMode=yes "${load_ssh[$i]}:$DIR/w$w" "$OUT/w$w"
		dirs+=("$OUT/w$w")
	done
	"$BIN" report merge "${dirs[@]}" --out "$OUT/merged"
}

case $action in
up) up ;;
load) load ;;
down) down ;;
all)
	up
	load
	;;
*) usage ;;
esac
