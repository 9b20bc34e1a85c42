#!/usr/bin/env bash
# airlock unpack of a bundle of a generated Rancher 1.6.14-shaped image set into a fresh local
# registry (plain http, --jobs 6). Prints wall time, peak RSS, extra disk (bytes airlock itself
# wrote to any file system, from ru_oublock: the bundle is streamed, never extracted) and how
# many images the registry serves with their upstream digest. Loopback only.
#
# Usage: scripts/bench-unpack.sh [--scale S]   (default 0.5: several hundred MB)
# Full comparison with skopeo and the machine's limits: scripts/bench.sh.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
scale=0.5
[ "${1:-}" = "--scale" ] && scale=$2
bench_init
bench_upstream "$scale"
bench_log "airlock pack (scale $scale), to have a bundle"
pack_airlock "$BENCH_WORK/pack"
bench_stop_upstream
dedup=$R_DEDUP
bench_log "airlock unpack"
unpack_airlock "$BENCH_WORK/unpack" "$BENCH_WORK/pack/bundle.tar.zst"
echo "unpack: 17 images, $(mib "$dedup") MiB deduplicated"
echo "wall time:       $R_TIME s"
echo "peak RSS:        $(mib "$((R_RSS * 1024))") MiB"
echo "extra disk:      $R_EXTRA bytes written"
echo "throughput:      $(mbps "$dedup" "$R_TIME") MB/s"
echo "digests in the target equal to upstream: $R_KEPT/17"
