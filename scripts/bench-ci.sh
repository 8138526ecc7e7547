#!/usr/bin/env bash
# bench-ci.sh BIN OUT MIN_EFFECT [REF]: the CI benchmark gate (make bench-ci).
#
# Each scenario in bench/ci/ runs three times in a row: the reference
# binary, this one (BIN), the reference again. This run is compared with
# the two reference runs as a baseline set (rustorium report compare): a
# metric regresses only when it is confidently worse than both, by at
# least MIN_EFFECT. The reference runs in the same minutes on the same
# machine, so the machine's hour — on a shared host every stage can be a
# third to four fifths slower in one hour than in the next (sessions 38
# and 39) — is in both sides and cancels; recordings committed from other
# hours could not tell a 2x slowdown from such an hour.
#
# REF (default: the first word of bench/ci/REF) is the commit whose code
# the gate holds: move it forward after a change that makes the code
# faster. It is built from this clone's history (a local clone at REF,
# go build) into OUT/bench-ci/ref/, once. REF=none compares with the recordings
# committed in bench/ci/baseline/<scenario>/ instead (a clone without
# that history, a reference that cannot run the scenario any more).
#
# Exit status: 0 when every scenario passed its checks without a confident
# regression, 3 on a regression or a failed check, 2 when the reference
# cannot be had or run.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BIN OUT MIN_EFFECT [REF]" >&2; exit 2; }
bin=$1 out=$2 min=$3 ref=${4:-}
cd "$(dirname "$0")/.."
if [ -z "$ref" ]; then
  ref=$(awk '!/^#/ && NF {print $1; exit}' bench/ci/REF)
fi

if [ "$ref" = none ]; then
  for sc in bench/ci/*.yaml; do
    name=$(basename "$sc" .yaml)
    echo "bench-ci: $name against the recordings in bench/ci/baseline/$name"
    "$bin" run "$sc" --out "$out/bench-ci/$name" --baseline "bench/ci/baseline/$name" --min-effect "$min"
  done
  exit 0
fi

commit=$(git rev-parse --verify -q "$ref^{commit}" 2>/dev/null) || {
  echo "bench-ci: the reference $ref is not a commit of this clone (a shallow clone?): fetch it, or run with BENCH_REF=none to compare with the committed recordings" >&2
  exit 2
}
root=$(pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
# The reference's own tree (a local clone at the commit), so that its runs
# record the reference's commit (environment.commit is the git commit of
# the run's directory) and its binary carries the commit's VCS stamp.
refdir=$(abs "$out/bench-ci/ref/${commit:0:12}")
refbin=$refdir/bin/rustorium
if [ ! -x "$refbin" ]; then
  echo "bench-ci: building the reference ${commit:0:12} ($(git log -1 --format=%s "$commit" | cut -c1-70))"
  rm -rf "$refdir"
  mkdir -p "$(dirname "$refdir")"
  if ! { git clone -q --no-checkout . "$refdir" && git -C "$refdir" checkout -q --detach "$commit" &&
    (cd "$refdir" && go build -o bin/rustorium.tmp ./cmd/rustorium && mv bin/rustorium.tmp bin/rustorium); }; then
    echo "bench-ci: could not build the reference ${commit:0:12} (above): move bench/ci/REF forward, or BENCH_REF=none" >&2
    exit 2
  fi
fi

status=0
for sc in bench/ci/*.yaml; do
  name=$(basename "$sc" .yaml)
  set_dir=$out/bench-ci/$name-ref
  rm -rf "$set_dir" && mkdir -p "$set_dir"
  for i in 1 2; do
    if [ "$i" = 2 ]; then
      echo "bench-ci: $name (this build)"
      rc=0
      "$bin" run "$sc" --out "$out/bench-ci/$name" || rc=$?
      [ "$rc" = 0 ] || { echo "bench-ci: $name failed its checks (exit $rc)" >&2; exit "$rc"; }
    fi
    echo "bench-ci: $name (reference ${commit:0:12}, run $i of 2)"
    rc=0
    (cd "$refdir" && "$refbin" run "$root/$sc" --out "$(abs "$out/bench-ci/$name-ref-$i")") > "$out/bench-ci/$name-ref-$i.log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
      echo "bench-ci: the reference ${commit:0:12} failed on $sc (exit $rc: 3 is a failed check, 1 a run it could not do; see $out/bench-ci/$name-ref-$i.log): move bench/ci/REF forward, or BENCH_REF=none" >&2
      exit 2
    fi
    cp "$out/bench-ci/$name-ref-$i/result.json" "$set_dir/$i.json"
  done
  echo
  echo "compared with the reference ${commit:0:12}, run before and after it:"
  rc=0
  "$bin" report compare --min-effect "$min" "$set_dir" "$out/bench-ci/$name" || rc=$?
  case $rc in
    0) ;;
    3) status=3 ;;
    *) exit "$rc" ;;
  esac
done
exit "$status"
