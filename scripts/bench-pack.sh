#!/usr/bin/env bash
# airlock pack --no-cache of a generated Rancher 1.6.14-shaped image set (17 images; scale 1 is
# 653 MiB deduplicated) from a local upstream registry pair: nothing is cached before or kept
# after, so every byte is downloaded. Prints wall time, peak RSS, MB/s and how many images keep
# their upstream digest (hashing the manifests stored in the bundle). Loopback only.
#
# Usage: scripts/bench-pack.sh [--scale S]   (default 0.5: several hundred MB)
# Full comparison with skopeo and the machine's limits: scripts/bench.sh.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
scale=0.5
[ "${1:-}" = "--scale" ] && scale=$2
bench_init
bench_upstream "$scale"
bench_log "airlock pack (scale $scale)"
pack_airlock "$BENCH_WORK/pack"
echo "pack: 17 images, $(mib "$R_DEDUP") MiB deduplicated, bundle $(mib "$R_SIZE") MiB"
echo "wall time:  $R_TIME s"
echo "peak RSS:   $(mib "$((R_RSS * 1024))") MiB"
echo "throughput: $(mbps "$R_DEDUP" "$R_TIME") MB/s"
echo "digests kept: $R_KEPT/17"
