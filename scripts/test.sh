#!/usr/bin/env bash
# Runs every check and test. Installs the real tools the tests drive (the CNCF distribution
# registry, skopeo, containerd, zstd) from Debian's packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in /usr/bin/docker-registry:docker-registry /usr/bin/skopeo:skopeo \
            /usr/bin/containerd:containerd /usr/bin/ctr:containerd /usr/bin/zstd:zstd; do
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
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
