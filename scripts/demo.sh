#!/usr/bin/env bash
# The whole airlock story on one machine, with no internet, against a rehearsal of today's
# internet: real registries on 127.0.0.1 stand in for the places Rancher 1.6.14's images are
# served today (see README "Today's internet"), holding generated images in today's formats:
#
#   gcr.io           nothing any more (Container Registry shut down): pack moves on
#   registry.k8s.io  gcr.io/google_containers at its root, same digests; pause-amd64:3.0 is a
#                    signed Docker schema 1 manifest (the registry stores schema 1)
#   docker.io        rancher/* as Docker schema 2; busybox:latest an OCI index with
#                    attestation manifests
#   ghcr.io          helm/tiller (gcr.io/kubernetes-helm was deleted)
#
# airlock packs `--version 1.6.14` through --mirror rules only, into one bundle split into parts
# as for a FAT32 USB stick; the parts are checked with sha256sum -c and airlock verify, unpacked
# straight from the parts into a default private registry (no schema 1), and checked with
# skopeo: pause and busybox converted to Docker schema 2 (their upstream digests recorded), the
# Docker-typed images with their upstream digests.
#
# Not rehearsed here: registry.k8s.io's redirects to other hosts with their own token servers,
# and Docker Hub's pull limit; the Rust rehearsal (tests/it/rehearsal.rs) has them.
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
fail() { echo "demo: $*" >&2; exit 1; }

step "building airlock"
cargo build --release --quiet
airlock=$PWD/target/release/airlock
fixtures=$PWD/target/release/airlock-fixtures

# The registries start as the benchmarks start theirs (a free port, retried if taken, a data
# dir under the work dir, stopped by the EXIT trap).
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
work=$(mktemp -d /tmp/airlock-demo.XXXXXX)
BENCH_WORK=$work
trap bench_cleanup EXIT

# The manifest a registry serves for REPO:TAG, raw, and what it says of itself.
raw() { skopeo inspect --raw --tls-verify=false "docker://$1"; }
media_type() { raw "$1" | grep -m1 -o '"mediaType": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'; }
digest_of() { skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$1"; }
# blocks REGEX FILE: the paragraphs of an airlock report (a line that does not start with a
# space, and the indented lines under it) that match REGEX.
blocks() {
  awk -v re="$1" '
    function flush() { if (b != "" && b ~ re) printf "%s", b; b = "" }
    /^[^ ]/ { flush() }
    { b = b $0 "\n" }
    END { flush() }' "$2"
}

step "starting today's places and the private registry (real docker-registry processes)"
# registry.k8s.io stores schema 1 (as the real one serves it); the private registry keeps the
# defaults, as most sites run it: no schema 1.
bench_start_registry gcr-io;                  gcr=127.0.0.1:$REG_PORT
bench_start_registry registry-k8s-io schema1; k8s=127.0.0.1:$REG_PORT
bench_start_registry docker-io;               hub=127.0.0.1:$REG_PORT
bench_start_registry ghcr-io;                 ghcr=127.0.0.1:$REG_PORT
bench_start_registry private;                 private=127.0.0.1:$REG_PORT
echo "gcr.io -> $gcr (empty)   registry.k8s.io -> $k8s (schema 1 enabled)"
echo "docker.io -> $hub   ghcr.io -> $ghcr   private registry -> $private (defaults)"

step "airlock list --version 1.6.14 (with the places pack tries, and the pinned digests)"
"$airlock" list --version 1.6.14 | tee "$work/images.txt"

step "seeding today's places with generated images in today's formats (scale $scale)"
names=$(grep -E '^ +- ' "$work/images.txt" | awk '{print $2}' | sort -u | paste -sd, -)
"$fixtures" seed --set rancher-1.6.14-today --extra-names "$names" --scale "$scale" \
  --registry "docker.io=http://$hub" --registry "registry.k8s.io=http://$k8s" \
  --registry "ghcr.io=http://$ghcr" > "$work/seeded.txt"
wc -l < "$work/seeded.txt" | xargs printf '%s images seeded\n'
# airlock pins every gcr.io/google_containers image to its real upstream digest, which
# generated images cannot have: the demo vouches for its own with a pin table of theirs, for
# the same references (--pins).
"$fixtures" pins --set rancher-1.6.14-today --extra-names "$names" --scale "$scale" \
  --builtin-only > "$work/pins.txt"

step "what upstream serves today"
pause_up=$(digest_of "$k8s/pause-amd64:3.0")
busybox_up=$(digest_of "$hub/library/busybox:latest")
raw "$k8s/pause-amd64:3.0" > "$work/pause.json"
grep -q '"schemaVersion": *1,' "$work/pause.json" && grep -q '"signatures"' "$work/pause.json" \
  || fail "the registry.k8s.io stand-in does not serve pause as signed schema 1"
echo "registry.k8s.io/pause-amd64:3.0           Docker schema 1, signed   $pause_up"
echo "docker.io/library/busybox:latest          $(media_type "$hub/library/busybox:latest") with $(raw "$hub/library/busybox:latest" | grep -c attestation-manifest) attestation manifests   $busybox_up"
gone=$(skopeo inspect --tls-verify=false "docker://$gcr/google_containers/pause-amd64:3.0" 2>&1 | grep -o 'manifest unknown' | head -1 || true)
echo "gcr.io/google_containers/pause-amd64:3.0  ${gone:-?}"

# A real stick would take --split fat32 (4 GiB - 1); the demo bundle is small, so 2M parts.
step "airlock pack --version 1.6.14 --split 2M (only --mirror rules point at the stand-ins)"
mkdir -p "$work/usb"
"$airlock" pack --version 1.6.14 -o "$work/usb/bundle.tar.zst" --split 2M --cache "$work/cache" \
  --pins "$work/pins.txt" \
  --mirror "gcr.io=http://$gcr" --mirror "registry.k8s.io=http://$k8s" \
  --mirror "docker.io=http://$hub" --mirror "ghcr.io=http://$ghcr" 2>&1 \
  | grep -v '^resolved ' | tee "$work/pack.txt"
ls -l "$work/usb"
nparts=$(ls "$work/usb"/bundle.tar.zst.[0-9][0-9][0-9] | wc -l)
[ "$nparts" -ge 3 ] || fail "expected at least 3 parts, got $nparts"

step "checking the copy with standard tools: sha256sum -c (one line per part)"
(cd "$work/usb" && sha256sum -c bundle.tar.zst.sha256)

step "airlock verify from the first part (offline, every byte, and every part's checksum)"
"$airlock" verify "$work/usb/bundle.tar.zst.000"

step "airlock inspect (the base name finds the parts): what was converted, from which digest"
"$airlock" inspect "$work/usb/bundle.tar.zst" > "$work/inspect.txt"
sed -n 2p "$work/inspect.txt"
blocks 'converted from' "$work/inspect.txt"
grep -q "$pause_up" "$work/inspect.txt" || fail "inspect does not record pause's upstream digest $pause_up"
grep -q "$busybox_up" "$work/inspect.txt" || fail "inspect does not record busybox's upstream digest $busybox_up"

step "airlock unpack into the private registry (schema 1 disabled), straight from the parts"
"$airlock" unpack "$work/usb/bundle.tar.zst.000" --registry "http://$private" > "$work/report.txt" 2>&1 \
  || { cat "$work/report.txt"; fail "unpack failed"; }
# The report names every image; here the converted ones, the summary and the Rancher settings.
blocks 'converted at pack time from' "$work/report.txt"
sed -n '/ images into /,$p' "$work/report.txt"

step "skopeo: pause and busybox arrived as Docker schema 2, which Docker 1.12-17.03 pulls"
docker2=application/vnd.docker.distribution.manifest.v2+json
for path in google_containers/pause-amd64:3.0 gcr.io/google_containers/pause-amd64:3.0 busybox:latest; do
  mt=$(media_type "$private/$path")
  config=$(raw "$private/$path" | grep -o '"application/vnd[^"]*image[^"]*"' | sort -u | paste -sd' ' -)
  echo "$path: $mt $(digest_of "$private/$path")"
  echo "    types: $config"
  [ "$mt" = "$docker2" ] || fail "$path is $mt, not $docker2"
  case "$config" in *oci*) fail "$path still has OCI types: $config";; esac
done
echo "upstream: pause $pause_up (schema 1), busybox $busybox_up (OCI index): recorded in the bundle (inspect above)"

step "skopeo: every Docker-typed image kept its upstream digest"
kept=0
while read -r name _; do
  case "$name" in
    gcr.io/google_containers/pause-amd64:*|docker.io/library/busybox:*) continue ;;
    gcr.io/google_containers/*) up="$k8s/${name#gcr.io/google_containers/}"; down="$private/${name#gcr.io/}" ;;
    gcr.io/kubernetes-helm/tiller:*) up="$ghcr/helm/tiller:${name##*:}"; down="$private/${name#gcr.io/}" ;;
    docker.io/library/*) up="$hub/${name#docker.io/}"; down="$private/${name#docker.io/library/}" ;;
    docker.io/*) up="$hub/${name#docker.io/}"; down="$private/${name#docker.io/}" ;;
    *) fail "no stand-in for $name" ;;
  esac
  a=$(digest_of "$up"); b=$(digest_of "$down")
  [ "$a" = "$b" ] || fail "$name: upstream $a, private registry $b"
  kept=$((kept + 1))
done < "$work/seeded.txt"
echo "$kept images: the private registry serves the digest upstream serves"

step "done: the Rancher settings are at the end of the unpack report above"
