#!/bin/sh
# Runs every fuzz target of fuzz/ for SECONDS each (default 600), two at a time.
#
#   scripts/fuzz.sh [SECONDS]
#
# Installs cargo-fuzz when missing. cargo-fuzz needs nightly for -Z flags: the nightly
# toolchain when rustup has one, else the stable one with RUSTC_BOOTSTRAP=1.
# Seeds come from `fuzz/src/bin/seed.rs` (a small real bundle, its tar, manifests, references);
# crashes land in fuzz/artifacts/<target>/, logs in fuzz/logs/<target>.log. The last
# `#N ... cov: X ft: Y` line of each log is printed at the end.
set -eu

SECONDS_PER_TARGET="${1:-600}"
TARGETS="reference manifest seek_table bundle bundle_tar sequential checksum_file parts_json inventory convert"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ="cargo +nightly fuzz"
else
    export RUSTC_BOOTSTRAP=1
    FUZZ="cargo fuzz"
fi

cargo run --release --quiet --bin seed
for t in $TARGETS; do
    $FUZZ build --release "$t"
done

mkdir -p logs
run() {
    # -rss_limit_mb: a frame may legitimately need 64 MiB; anything near 1 GiB is a bug.
    # -timeout: one input must not take more than 20 s.
    $FUZZ run --release "$1" "corpus/$1" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=1024 -timeout=20 \
        -max_len=65536 -print_final_stats=1 >"logs/$1.log" 2>&1
}

status=0
set -- $TARGETS
while [ $# -gt 0 ]; do
    a="$1"; shift
    b="${1:-}"; [ $# -gt 0 ] && shift
    run "$a" & pa=$!
    pb=""
    if [ -n "$b" ]; then run "$b" & pb=$!; fi
    wait "$pa" || { echo "fuzz target $a failed: see fuzz/logs/$a.log and fuzz/artifacts/$a/"; status=1; }
    if [ -n "$pb" ]; then
        wait "$pb" || { echo "fuzz target $b failed: see fuzz/logs/$b.log and fuzz/artifacts/$b/"; status=1; }
    fi
done

for t in $TARGETS; do
    printf '%-12s %s\n' "$t" "$(grep -E '^#[0-9]+' "logs/$t.log" | tail -n 1)"
done
exit $status
