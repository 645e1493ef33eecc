#!/usr/bin/env bash
# Benchmark of `triage diagnose` against ripgrep on the same data.
#
#   bench/run.sh [SIZE_MIB] [RULES] [SMALL_FILES]
#                                        (defaults: 1024 MiB, 1000 rules, 50000 small files)
#
# Generates (once, deterministically) a bundle of SIZE_MIB MiB of logs in
# every format and RULES rules of realistic shape, then times, with a warm
# page cache: rule loading alone, `triage diagnose` (built-in + generated
# rules), `rg -c -f` with the rules' regexes, `rg -F -c -f` with their
# literals, and the same bundle as a .tar.gz against `gzip -dc`. Prints each
# time, the throughputs, the ratios and peak RSS. Installs ripgrep and GNU
# time from Debian if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${1:-1024}
RULES=${2:-1000}
SMALL=${3:-50000}
# Bump when examples/bench_gen.rs changes what it writes, so stale data is
# not reused.
GEN_VERSION=3
OUT=${BENCH_DIR:-target/bench-data}/v$GEN_VERSION-$SIZE-$RULES-$SMALL

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "installing $2 ..." >&2
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq >/dev/null && apt-get install -y -qq "$2" >/dev/null
        else
            sudo apt-get update -qq >/dev/null && sudo apt-get install -y -qq "$2" >/dev/null
        fi
    fi
}
need rg ripgrep
[ -x /usr/bin/time ] || need /usr/bin/time time

cargo build --release --quiet
cargo build --release --quiet --example bench_gen
TRIAGE=target/release/triage

if [ ! -f "$OUT/.done" ]; then
    rm -rf "$OUT"
    target/release/examples/bench_gen "$OUT" "$SIZE" "$RULES" 42 "$SMALL"
    tar czf "$OUT/bundle.tar.gz" -C "$OUT" bundle
    touch "$OUT/.done"
fi
BYTES=$(du -sb "$OUT/bundle" | cut -f1)

# Warm the page cache.
cat "$OUT"/bundle/*/* "$OUT"/bundle/*/*/*/* "$OUT"/bundle/*/*/*/*/* "$OUT/bundle.tar.gz" >/dev/null 2>&1 || true

# best of N runs: prints "seconds max_rss_kb"
measure() {
    local runs=$1; shift
    local best="" rss=0
    for _ in $(seq "$runs"); do
        /usr/bin/time -f "%e %M" -o "$OUT/.time" "$@" >/dev/null 2>"$OUT/.stderr" || true
        # GNU time writes "Command exited with non-zero status N" first when
        # the command exits non-zero (triage does, when it finds something).
        t=$(tail -1 "$OUT/.time" | cut -d' ' -f1); m=$(tail -1 "$OUT/.time" | cut -d' ' -f2)
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    echo "$best $rss"
}

# Loading and compiling the rules as every run does: a diagnose of an empty
# directory. `triage check` also compiles every regex's Unicode form and
# runs the linter: the authoring check, timed on its own.
mkdir -p "$OUT/empty"
read -r t_load rss_load < <(measure 5 "$TRIAGE" diagnose "$OUT/empty" --rules "$OUT/rules" --format json)
read -r t_check rss_check < <(measure 5 "$TRIAGE" check "$OUT/rules")
# The three compared runs take turns, ROUNDS times, and each keeps its best:
# on a shared machine the speed drifts over a minute, and runs of one
# program back to back would meet a different machine than the other's.
# The ratio of each round is printed too.
ROUNDS=${ROUNDS:-5}
t_triage="" t_rg="" t_rgf="" rss_triage=0 rss_rg=0 rss_rgf=0 round_ratios=""
for _ in $(seq "$ROUNDS"); do
    read -r a ra < <(measure 1 "$TRIAGE" diagnose "$OUT/bundle" --rules "$OUT/rules" --format json)
    read -r b rb < <(measure 1 rg -F -c -f "$OUT/literals.txt" "$OUT/bundle")
    read -r c rc < <(measure 1 rg -c -f "$OUT/patterns.txt" "$OUT/bundle")
    round_ratios="$round_ratios $(awk "BEGIN{printf \"%.2f\", $a / $b}")"
    if [ -z "$t_triage" ] || awk "BEGIN{exit !($a < $t_triage)}"; then t_triage=$a; fi
    if [ -z "$t_rgf" ] || awk "BEGIN{exit !($b < $t_rgf)}"; then t_rgf=$b; fi
    if [ -z "$t_rg" ] || awk "BEGIN{exit !($c < $t_rg)}"; then t_rg=$c; fi
    [ "$ra" -gt "$rss_triage" ] && rss_triage=$ra
    [ "$rb" -gt "$rss_rgf" ] && rss_rgf=$rb
    [ "$rc" -gt "$rss_rg" ] && rss_rg=$rc
done
read -r t_gz _ < <(measure 3 sh -c "gzip -dc '$OUT/bundle.tar.gz' >/dev/null")
read -r t_tgz rss_tgz < <(measure 3 "$TRIAGE" diagnose "$OUT/bundle.tar.gz" --rules "$OUT/rules" --format json)
# The small-files tree is read cold the first time; warm it, then measure.
"$TRIAGE" diagnose "$OUT/sosreport" --format json >/dev/null 2>&1 || true
read -r t_sos rss_sos < <(measure 3 "$TRIAGE" diagnose "$OUT/sosreport" --rules "$OUT/rules" --format json)

mbs() { awk "BEGIN{printf \"%.0f\", $BYTES / 1048576 / $1}"; }
ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }

echo
echo "bundle: $(awk "BEGIN{printf \"%.0f\", $BYTES/1048576}") MiB in $(find "$OUT/bundle" -type f | wc -l) files; rules: $RULES generated + built-in; $(nproc) cores"
printf '%-44s %9s %10s %10s\n' "what" "seconds" "MiB/s" "peak RSS"
printf '%-44s %9s %10s %8s MB\n' "load and compile the rules (empty bundle)" "$t_load" "-" "$((rss_load / 1024))"
printf '%-44s %9s %10s %8s MB\n' "triage check of the rules" "$t_check" "-" "$((rss_check / 1024))"
printf '%-44s %9s %10s %8s MB\n' "triage diagnose (directory)" "$t_triage" "$(mbs "$t_triage")" "$((rss_triage / 1024))"
printf '%-44s %9s %10s %8s MB\n' "rg -c -f patterns (the rules' regexes)" "$t_rg" "$(mbs "$t_rg")" "$((rss_rg / 1024))"
printf '%-44s %9s %10s %8s MB\n' "rg -F -c -f literals (the rules' literals)" "$t_rgf" "$(mbs "$t_rgf")" "$((rss_rgf / 1024))"
printf '%-44s %9s %10s %10s\n' "gzip -dc bundle.tar.gz" "$t_gz" "$(mbs "$t_gz")" "-"
printf '%-44s %9s %10s %8s MB\n' "triage diagnose (bundle.tar.gz)" "$t_tgz" "$(mbs "$t_tgz")" "$((rss_tgz / 1024))"
printf '%-44s %9s %10s %8s MB\n' "triage diagnose ($SMALL small files)" "$t_sos" "$(awk "BEGIN{printf \"%.0f files/s\", $SMALL / $t_sos}")" "$((rss_sos / 1024))"
echo
echo "rg -c -f / triage:          $(ratio "$t_rg" "$t_triage")x   (target >= 4)"
echo "triage / rg -F -c -f:       $(ratio "$t_triage" "$t_rgf")x   (target <= 1.5; each round:$round_ratios)"
echo "triage .tar.gz / gzip -dc:  $(ratio "$t_tgz" "$t_gz")x   (target <= 1.3)"
echo "load and compile the rules: $(awk "BEGIN{printf \"%.0f\", $t_load * 1000}") ms   (target <= 200)"
echo "small files:                $(awk "BEGIN{printf \"%.0f\", $SMALL / $t_sos}") files/s   (target >= 2000)"
