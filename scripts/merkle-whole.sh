#!/usr/bin/env bash
# scripts/merkle-whole.sh — whole-process Merkle comparison: `rustorium merkle
# root --batch B` against the same job done with go-merkletree-sql
# (bench/cmd/merklepeer root), on N seeded writes, process start and parsing
# included.
#
#   scripts/merkle-whole.sh [RUNS]     (default 7 runs of each side)
#
# Both binaries are built into a temporary directory; the input (about 80% new
# keys, 20% updates, as BenchmarkMerkleBlocks30x1000) comes from
# `merklepeer gen`. Each run starts both processes one after the other, the
# order alternating from run to run, so both see the same machine load; their
# outputs (one root per batch) must be identical. It prints each run's wall and
# CPU (user + sys) times and ratios (peer / ours), then the medians of each
# side, the median ratios and their range, and `uptime`. The CPU ratio is the
# one that does not credit ours for using more than one core.
#
# Environment (all optional):
#   WRITES       number of writes            (default 30000)
#   BATCH        --batch                     (default 1000)
#   SEED         generator seed              (default 1)
#   GOMAXPROCS   passed to both processes    (default: unset, all cores)
set -euo pipefail

RUNS=${1:-7}
WRITES=${WRITES:-30000}
BATCH=${BATCH:-1000}
SEED=${SEED:-1}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cd "$REPO_ROOT"
go build -o "$TMP/rustorium" ./cmd/rustorium
go build -o "$TMP/merklepeer" ./bench/cmd/merklepeer
"$TMP/merklepeer" gen -n "$WRITES" -seed "$SEED" >"$TMP/in.txt"

# run SIDE: runs one side on the input, appends its wall and CPU (user + sys)
# milliseconds to TMP/SIDE.ms and TMP/SIDE.cpu
run() {
	local t
	t=$({
		TIMEFORMAT='%R %U %S'
		time case $1 in
		ours) "$TMP/rustorium" merkle root --batch "$BATCH" <"$TMP/in.txt" >"$TMP/ours.out" ;;
		peer) "$TMP/merklepeer" root -batch "$BATCH" <"$TMP/in.txt" >"$TMP/peer.out" ;;
		esac
	} 2>&1)
	awk '{ printf "%d\n", $1 * 1000 }' <<<"$t" >>"$TMP/$1.ms"
	awk '{ printf "%d\n", ($2 + $3) * 1000 }' <<<"$t" >>"$TMP/$1.cpu"
}

echo "merkle-whole: $WRITES writes, --batch $BATCH, seed $SEED, $RUNS runs, GOMAXPROCS=${GOMAXPROCS:-unset}"
uptime
: >"$TMP/ratios"
: >"$TMP/cpuratios"
for i in $(seq 1 "$RUNS"); do
	if ((i % 2)); then run ours; run peer; else run peer; run ours; fi
	if ! cmp -s "$TMP/ours.out" "$TMP/peer.out"; then
		echo "run $i: the roots differ" >&2
		diff "$TMP/ours.out" "$TMP/peer.out" | head >&2
		exit 1
	fi
	o=$(tail -1 "$TMP/ours.ms") p=$(tail -1 "$TMP/peer.ms")
	oc=$(tail -1 "$TMP/ours.cpu") pc=$(tail -1 "$TMP/peer.cpu")
	r=$(awk -v p="$p" -v o="$o" 'BEGIN { printf "%.2f", p / o }')
	rc=$(awk -v p="$pc" -v o="$oc" 'BEGIN { printf "%.2f", p / o }')
	echo "$r" >>"$TMP/ratios"
	echo "$rc" >>"$TMP/cpuratios"
	echo "run $i: wall ours ${o} ms, peer ${p} ms, ratio ${r}x; cpu ours ${oc} ms, peer ${pc} ms, ratio ${rc}x"
done

median() { sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
range() { sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'; }
echo "wall: median ours $(median "$TMP/ours.ms") ms, peer $(median "$TMP/peer.ms") ms;" \
	"ratio (peer/ours per run) median $(median "$TMP/ratios")x, range $(range "$TMP/ratios")x"
echo "cpu (user+sys): median ours $(median "$TMP/ours.cpu") ms, peer $(median "$TMP/peer.cpu") ms;" \
	"ratio median $(median "$TMP/cpuratios")x, range $(range "$TMP/cpuratios")x"
echo "outputs: $(wc -l <"$TMP/ours.out") roots each, identical in every run"
uptime
