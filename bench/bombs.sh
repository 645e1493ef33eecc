#!/usr/bin/env bash
# Decompression bombs against `triage diagnose`: the time each takes to be
# stopped and the peak RSS of the process, with the CLI's limits and with
# the service's.
#
#   bench/bombs.sh [SCALE] [TRIAGE]     (defaults: 4, target/release/triage)
#
# The bombs are written by `examples/bombs.rs` (the tests' generators,
# tests/it/common/bombs.rs) into target/bombs-SCALE; nothing large is
# committed. Each run is cut at 120 s (`timeout`), shown as "> 120".
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-4}
TRIAGE=${2:-target/release/triage}
OUT=target/bombs-$SCALE
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }
if [ ! -f "$OUT/.done" ]; then
    cargo build --release --quiet --example bombs
    target/release/examples/bombs "$OUT" "$SCALE"
    touch "$OUT/.done"
fi
SERVE_LIMITS=(--max-ratio 200 --max-total-bytes 8589934592 --max-file-bytes 4294967296 --max-depth 6)
printf '%-20s %10s  %18s  %18s\n' bomb bytes "CLI: s / MiB RSS" "serve: s / MiB RSS"
for f in "$OUT"/*.zip "$OUT"/*.gz; do
    row=()
    for limits in cli serve; do
        args=()
        [ "$limits" = serve ] && args=("${SERVE_LIMITS[@]}")
        /usr/bin/time -f "%e %M" -o "$OUT/.time" timeout 120 "$TRIAGE" diagnose --format json "${args[@]}" "$f" >/dev/null 2>&1 || true
        read -r secs kb < <(grep -E '^[0-9.]+ [0-9]+$' "$OUT/.time" | tail -1)
        if grep -q "status 124" "$OUT/.time"; then secs="> 120"; fi
        row+=("$(printf '%s / %d' "$secs" $((kb / 1024)))")
    done
    printf '%-20s %10d  %18s  %18s\n' "$(basename "$f")" "$(stat -c %s "$f")" "${row[0]}" "${row[1]}"
done
