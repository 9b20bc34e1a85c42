#!/usr/bin/env bash
# Runs every check and test. Installs the real tools the tests drive (the CNCF distribution
# registry, skopeo, containerd, zstd, and GNU time, which measures the hostile-bundle runs)
# from Debian's packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in /usr/bin/docker-registry:docker-registry /usr/bin/skopeo:skopeo \
            /usr/bin/containerd:containerd /usr/bin/ctr:containerd /usr/bin/zstd:zstd \
            /usr/bin/time:time; do
  [ -x "${pair%%:*}" ] || need+=("${pair##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The fuzz targets (fuzz/, a workspace of its own) are type-checked and linted, not run, so they
# cannot rot unseen. Checking needs no nightly toolchain and no libFuzzer: CUSTOM_LIBFUZZER_PATH
# keeps libfuzzer-sys from compiling libFuzzer's C++, which only a link would use. Sharing
# target/ reuses what the line above checked. Running them: scripts/fuzz.sh.
CUSTOM_LIBFUZZER_PATH=/nonexistent/libfuzzer.a \
  cargo clippy --manifest-path fuzz/Cargo.toml --bins --locked --target-dir target -- -D warnings
cargo test --all-targets --locked
