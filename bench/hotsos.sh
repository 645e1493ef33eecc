#!/usr/bin/env bash
# Speed against hotsos (issue 17, item 4): hotsos and triage over the same
# data roots, with the same knowledge (hotsos's 32 pure-log scenario files,
# and their port in examples/hotsos/rules).
#
#   bench/hotsos.sh [RUNS]          (default: best of 3)
#
# Installs hotsos from PyPI into a virtual environment (once; HOTSOS_VENV,
# default $TMPDIR/triage-hotsos-venv; HOTSOS_VERSION, default 1.30.post8),
# builds triage in release mode, then times, with a warm page cache:
#
#  1. the 38 bundles of examples/hotsos/corpus (hotsos's pure-log scenario
#     tests): hotsos's scenario engine as hotsos's own tests run it
#     (bench/hotsos_scenarios.py: the 32 scenario files only, `--all-logs`,
#     plugins' "runnable" checks bypassed, one Python process for all
#     roots), against `triage diagnose --rules examples/hotsos/rules` on
#     the 38 bundles in one process (built-in rules included; --jobs 1 and
#     the default, one job per core);
#  2. hotsos's ceph-mon data root (HOTSOS_DATA/tests/unit/fake_data_root/
#     storage/ceph-mon: var/log and sos_commands of a real sosreport, 422
#     files, 13 MB; the inputs of none of the 32 scenarios are there, so
#     it measures what reading a root costs each tool): the same two, and the plain `hotsos --all-logs --short`
#     command, which runs every plugin that applies (ceph, kernel, system,
#     ... : its whole knowledge base, not only these scenarios).
#
# Also checks that both tools raise, on each of the 38 bundles, what
# hotsos's test expects (corpus/<test>/expected.json), and prints each time
# and the ratios. Not run by CI: it needs PyPI. HOTSOS_DATA defaults to the
# shared copy of canonical/hotsos @ 57b256c next to this repository.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-3}
HOTSOS_DATA=${HOTSOS_DATA:-../shared/data/hotsos}
VENV=${HOTSOS_VENV:-${TMPDIR:-/tmp}/triage-hotsos-venv}
HOTSOS_VERSION=${HOTSOS_VERSION:-1.30.post8}
OUT=${BENCH_DIR:-target/bench-hotsos}
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/hotsos" ]; then
    echo "installing hotsos $HOTSOS_VERSION from PyPI into $VENV ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "hotsos==$HOTSOS_VERSION"
fi
cargo build --release --quiet
TRIAGE=target/release/triage
PY=$VENV/bin/python
echo "hotsos $("$VENV/bin/hotsos" --version 2>/dev/null | tail -1), $($TRIAGE --version)"

# hotsos's 32 pure-log scenario files (not the "near-pure" ones, which carry a [reason])
grep '^#   hotsos/defs/scenarios/' "$HOTSOS_DATA/pure_log_scenarios.txt" | grep -v '\[' \
    | sed 's|^#   hotsos/defs/scenarios/||' >"$OUT/scenarios.txt"
CEPH=$HOTSOS_DATA/tests/unit/fake_data_root/storage/ceph-mon
BUNDLES=(examples/hotsos/corpus/*/bundle)
echo "${#BUNDLES[@]} bundles, $(wc -l <"$OUT/scenarios.txt") scenario files, ceph-mon root: $(find "$CEPH" -type f | wc -l) files, $(du -sh "$CEPH" | cut -f1)"

# warm the page cache
cat "${BUNDLES[@]/%//**}" >/dev/null 2>&1 || true
find "$CEPH" examples/hotsos -type f -exec cat {} + >/dev/null

# best of RUNS runs of a command (by wall clock): prints "wall cpu" seconds
# (cpu = user + system, children included: less moved by other load)
best() {
    local b="" line
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S" -o "$OUT/.time" "$@" >/dev/null 2>&1 || true
        line=$(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+$' "$OUT/.time")
        b=$(python3 -c "w,u,s=map(float,'$line'.split()); b='$b'.split(); print(f'{w:.3f} {u+s:.3f}' if not b or w<float(b[0]) else ' '.join(b))")
    done
    echo "$b"
}
# ratio of the first field (wall) and of the second (cpu) of two `best` results
ratio() { python3 -c "a='$1'.split(); b='$2'.split(); print(f'{float(a[0])/float(b[0]):.1f}x wall, {float(a[1])/max(float(b[1]),0.001):.1f}x cpu')"; }
show() { python3 -c "w,c='$1'.split(); print(f'{w}s wall ({c}s cpu)')"; }

# (commands, not shell functions: /usr/bin/time runs them)
HOT=("$PY" bench/hotsos_scenarios.py "$OUT/scenarios.txt")
TRI=("$TRIAGE" diagnose --rules examples/hotsos/rules --format json)

# --- the answers: both tools against what hotsos's tests expect ---
"${HOT[@]}" "${BUNDLES[@]}" >"$OUT/hotsos.jsonl"
"${TRI[@]}" "${BUNDLES[@]}" >"$OUT/triage.json" 2>/dev/null || true
python3 - "$OUT/hotsos.jsonl" "$OUT/triage.json" <<'EOF'
import json, os, sys
hot = [json.loads(l) for l in open(sys.argv[1])]
tri = json.load(open(sys.argv[2]))
ok_h = ok_t = 0
for h, t in zip(hot, tri):
    exp = json.load(open(os.path.join(os.path.dirname(h["root"]), "expected.json")))
    want = sorted(x["key"].rsplit("/", 1)[-1] for x in exp["hotsos"])
    got = sorted(str(r["id"]).rsplit("/", 1)[-1] for r in h["raised"])
    ok_h += want == got
    if want != got:
        print(f"  hotsos differs from its test on {h['root']}: {got} (test: {want})")
    fired = sorted(d["rule_id"] for d in t["diagnoses"] if d["rule_id"] in exp["rules"])
    ok_t += fired == sorted(r["rule"] for r in exp["raised"])
print(f"answers as hotsos's tests expect: hotsos {ok_h}/{len(hot)}, triage {ok_t}/{len(tri)}")
EOF

# --- 1. the 38 bundles ---
H38=$(best "${HOT[@]}" "${BUNDLES[@]}")
T38=$(best "${TRI[@]}" --jobs 1 "${BUNDLES[@]}")
T38P=$(best "${TRI[@]}" "${BUNDLES[@]}")
echo "38 bundles: hotsos scenarios $(show "$H38"); triage --jobs 1 $(show "$T38"): $(ratio "$H38" "$T38"); triage, one job per core $(show "$T38P"): $(ratio "$H38" "$T38P")"

# --- 2. the ceph-mon data root ---
HC=$(best "${HOT[@]}" "$CEPH")
HCF=$(best "$VENV/bin/hotsos" --all-logs --short --quiet "$CEPH")
TC=$(best "${TRI[@]}" "$CEPH")
TCB=$(best "$TRIAGE" diagnose --format json "$CEPH")
echo "ceph-mon: hotsos scenarios $(show "$HC"); triage with the port $(show "$TC"): $(ratio "$HC" "$TC")"
echo "ceph-mon: plain hotsos --all-logs --short (every plugin that applies) $(show "$HCF"): $(ratio "$HCF" "$TC") triage with the port; triage with only its built-in rules $(show "$TCB")"
"${HOT[@]}" "$CEPH" >"$OUT/ceph-hotsos.jsonl"
"${TRI[@]}" "$CEPH" >"$OUT/ceph-triage.json" 2>/dev/null || true
python3 - "$OUT/ceph-hotsos.jsonl" "$OUT/ceph-triage.json" <<'EOF'
import json, sys
h = json.loads(open(sys.argv[1]).readline())
t = json.load(open(sys.argv[2]))
hot = [d for d in t["diagnoses"] if d["rule_id"].startswith("HOTSOS-")]
inc = [d for d in t["inconclusive"] if d["rule_id"].startswith("HOTSOS-")]
print(f"ceph-mon answers: hotsos raised {len(h['raised'])} from the 32 scenarios; triage fired {len(hot)} of the 36 ported rules, {len(inc)} inconclusive (their input is not in the root)")
EOF
