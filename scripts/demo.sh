#!/usr/bin/env bash
# The whole airlock story on one machine, with no internet: a local "upstream" registry pair
# stands in for docker.io and gcr.io (via --mirror), holding generated images under the Rancher
# 1.6.14 names; airlock packs them into one bundle split into parts as for a FAT32 USB stick,
# the parts are checked with sha256sum -c and with airlock verify, unpacked straight from the
# parts into a second ("private") registry, and checked with skopeo.
#
# Usage: scripts/demo.sh [--scale S]   (default scale 0.02: about 25 MB of images)
set -euo pipefail
cd "$(dirname "$0")/.."
scale=0.02
[ "${1:-}" = "--scale" ] && scale="$2"

need=()
for pair in /usr/bin/docker-registry:docker-registry /usr/bin/skopeo:skopeo /usr/bin/zstd:zstd; do
  [ -x "${pair%%:*}" ] || need+=("${pair##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "building airlock"
cargo build --release --quiet
airlock=$PWD/target/release/airlock
fixtures=$PWD/target/release/airlock-fixtures

work=$(mktemp -d /tmp/airlock-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$(( (RANDOM % 20000) + 30000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# start_registry NAME: sets REG_PORT; the registry runs until the script ends. Not called in
# $(...): the pid must reach this shell's `pids`, or the EXIT trap would not stop it.
start_registry() {
  local name=$1 port
  port=$(free_port)
  mkdir -p "$work/$name"
  cat > "$work/$name/config.yml" <<YAML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/$name/data}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$port}
YAML
  /usr/bin/docker-registry serve "$work/$name/config.yml" >"$work/$name/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { REG_PORT=$port; return; }
    sleep 0.05
  done
  echo "registry $name did not start: $(cat "$work/$name/log")" >&2
  exit 1
}

step "starting three local registries: docker.io and gcr.io stand-ins, and the private one"
start_registry docker-io; docker_port=$REG_PORT
start_registry gcr-io; gcr_port=$REG_PORT
start_registry private; private_port=$REG_PORT
echo "docker.io -> 127.0.0.1:$docker_port   gcr.io -> 127.0.0.1:$gcr_port   private registry -> 127.0.0.1:$private_port"

step "airlock list --version 1.6.14"
"$airlock" list --version 1.6.14 | tee "$work/images.txt"

step "seeding the upstream stand-ins with generated images under those names (scale $scale)"
extra=$(grep -E '^ +- ' "$work/images.txt" | awk '{print $2}' | sort -u | paste -sd, -)
"$fixtures" seed --set rancher-1.6.14 --extra-names "$extra" --scale "$scale" \
  --registry "docker.io=http://127.0.0.1:$docker_port" --registry "gcr.io=http://127.0.0.1:$gcr_port"
# airlock pins the gcr.io images to their real upstream digests, which generated images cannot
# have: the demo vouches for its own with a pin table of theirs (--pins).
"$fixtures" pins --set rancher-1.6.14 --extra-names "$extra" --scale "$scale" > "$work/pins.txt"

# A real stick would take --split fat32 (4 GiB - 1); the demo bundle is small, so 2M parts (4 or more).
step "airlock pack --version 1.6.14 --split 2M (through --mirror, as an internet host would pull from docker.io and gcr.io)"
mkdir -p "$work/usb"
"$airlock" pack --version 1.6.14 -o "$work/usb/bundle.tar.zst" --split 2M --cache "$work/cache" \
  --mirror "docker.io=http://127.0.0.1:$docker_port" --mirror "gcr.io=http://127.0.0.1:$gcr_port" \
  --pins "$work/pins.txt"
ls -l "$work/usb"
nparts=$(ls "$work/usb"/bundle.tar.zst.[0-9][0-9][0-9] | wc -l)
[ "$nparts" -ge 3 ] || { echo "expected at least 3 parts, got $nparts" >&2; exit 1; }

step "checking the copy with standard tools: sha256sum -c (one line per part)"
(cd "$work/usb" && sha256sum -c bundle.tar.zst.sha256)

step "airlock verify from the first part (offline, every byte, and every part's checksum)"
"$airlock" verify "$work/usb/bundle.tar.zst.000"

step "airlock inspect (the base name finds the parts)"
"$airlock" inspect "$work/usb/bundle.tar.zst" | head -12

step "airlock unpack into the private registry, straight from the parts"
"$airlock" unpack "$work/usb/bundle.tar.zst.000" --registry "http://127.0.0.1:$private_port" | tee "$work/report.txt"

step "skopeo inspect of the pause image, at both paths a kubelet may ask for"
for path in google_containers/pause-amd64:3.0 gcr.io/google_containers/pause-amd64:3.0; do
  skopeo inspect --tls-verify=false "docker://127.0.0.1:$private_port/$path" | grep -E '"(Name|Digest)"'
done

step "the same digest as upstream"
up=$(skopeo inspect --tls-verify=false "docker://127.0.0.1:$gcr_port/google_containers/pause-amd64:3.0" | grep '"Digest"')
down=$(skopeo inspect --tls-verify=false "docker://127.0.0.1:$private_port/google_containers/pause-amd64:3.0" | grep '"Digest"')
echo "upstream: $up"
echo "private:  $down"
[ "$up" = "$down" ]

step "done: the Rancher settings are at the end of the unpack report above"
