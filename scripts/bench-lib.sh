# shellcheck shell=bash
# Shared functions of scripts/bench.sh, scripts/bench-pack.sh and scripts/bench-unpack.sh.
# Source it from a bash script running with `set -euo pipefail`; call bench_init first.
#
# Everything listens on and talks to 127.0.0.1 only. Every registry started here runs with a
# temporary directory under $BENCH_WORK and is stopped by the EXIT trap that bench_init sets.
#
# Measuring: each process runs under `/usr/bin/time`, which appends "LABEL PEAK_RSS_KB
# FS_OUTPUT_BLOCKS USER_S SYS_S" to a file; a run's peak RSS is the largest sum of processes that ran at the
# same time (4 parallel skopeo copies: the 4 largest; a pipeline: its parts summed), and its
# written bytes are the file-system output blocks (ru_oublock, 512 bytes each); its CPU time is
# user + system seconds summed over its processes (the registries' own CPU is not included).

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AIRLOCK=$BENCH_ROOT/target/release/airlock
FIXTURES=$BENCH_ROOT/target/release/airlock-fixtures
BENCH_PIDS=()
BENCH_WORK=""
BENCH_TEMPLATE=v1.8.5-rancher4
BENCH_SELECT=(--version 1.6.14 --k8s-template "$BENCH_TEMPLATE" --only pause --only infra --only addons)
BENCH_PAR=4

bench_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs the Debian packages providing the tools, or fails naming them.
bench_deps() {
  local need=() pair
  for pair in /usr/bin/docker-registry:docker-registry /usr/bin/skopeo:skopeo /usr/bin/zstd:zstd \
    /usr/bin/time:time /usr/bin/jq:jq /usr/bin/curl:curl /usr/bin/openssl:openssl \
    /usr/bin/sha256sum:coreutils /usr/bin/tar:tar; do
    [ -x "${pair%%:*}" ] || need+=("${pair##*:}")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  bench_log "installing ${need[*]}"
  if ! { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
    echo "bench: missing tools; install the Debian packages: ${need[*]}" >&2
    exit 1
  fi
}

bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$BENCH_WORK" ] && [ -z "${BENCH_KEEP:-}" ] && rm -rf "$BENCH_WORK"
  return 0
}

# bench_init: tools, a release build, a work dir under /tmp (or $BENCH_TMP) and the trap.
bench_init() {
  bench_deps
  bench_log "building airlock (release)"
  (cd "$BENCH_ROOT" && cargo build --release --quiet)
  BENCH_WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/airlock-bench.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# A port below the kernel's ephemeral range (so no outgoing connection holds it) that nothing
# listens on; bench_start_registry still retries if it is taken in between.
bench_free_port() {
  local p lo
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$lo" -gt 12000 ] || lo=32768
  while :; do
    p=$(((RANDOM % (lo - 11000)) + 10000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# bench_start_registry NAME: starts a distribution registry on 127.0.0.1 with its own data
# dir; sets REG_PORT and REG_PID (no subshell, so the pid is tracked for the trap).
bench_start_registry() {
  local name=$1 port dir try _
  dir=$BENCH_WORK/reg-$name
  for try in 1 2 3 4 5; do
    port=$(bench_free_port)
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$port}
YAML
    /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    REG_PID=$!
    BENCH_PIDS+=("$REG_PID")
    for _ in $(seq 200); do
      kill -0 "$REG_PID" 2>/dev/null || break # exited: the port was taken; try another
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && kill -0 "$REG_PID" 2>/dev/null; then
        REG_PORT=$port
        return 0
      fi
      sleep 0.05
    done
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  done
  echo "registry $name did not start: $(cat "$dir/log")" >&2
  exit 1
}

# bench_stop_registry NAME PID: stops it and deletes its data.
bench_stop_registry() {
  kill "$2" 2>/dev/null || true
  wait "$2" 2>/dev/null || true
  rm -rf "$BENCH_WORK/reg-$1"
}

# bench_upstream SCALE: an upstream pair (docker.io, gcr.io stand-ins) seeded with the
# Rancher 1.6.14 set; sets UP_DOCKER, UP_GCR (ports) and writes $BENCH_WORK/images.tsv:
# "n  source  upstream-url-path  private-path  alt-path|-  expected-digest".
bench_upstream() {
  local scale=$1
  bench_start_registry "docker-io"
  UP_DOCKER=$REG_PORT
  UP_DOCKER_PID=$REG_PID
  bench_start_registry "gcr-io"
  UP_GCR=$REG_PORT
  UP_GCR_PID=$REG_PID
  # What points airlock at the stand-ins.
  UP_MIRRORS=(--mirror "docker.io=http://127.0.0.1:$UP_DOCKER" --mirror "gcr.io=http://127.0.0.1:$UP_GCR")
  bench_log "seeding upstream stand-ins (docker.io -> 127.0.0.1:$UP_DOCKER, gcr.io -> 127.0.0.1:$UP_GCR), scale $scale"
  "$FIXTURES" seed --set rancher-1.6.14 --scale "$scale" \
    --registry "docker.io=http://127.0.0.1:$UP_DOCKER" --registry "gcr.io=http://127.0.0.1:$UP_GCR" \
    >"$BENCH_WORK/seed.txt"
  "$AIRLOCK" list "${BENCH_SELECT[@]}" --output json |
    jq -r '.templates[].images[] | [.reference, .private_path, (.alt_paths[0] // "-")] | @tsv' |
    sort -u >"$BENCH_WORK/list.tsv"
  local n=0 src priv alt host path port raw mt digest
  : >"$BENCH_WORK/images.tsv"
  while IFS=$'\t' read -r src priv alt; do
    n=$((n + 1))
    host=${src%%/*}
    path=${src#*/}
    case $host in docker.io) port=$UP_DOCKER ;; gcr.io) port=$UP_GCR ;; *) echo "unexpected $src" >&2; exit 1 ;; esac
    raw=$(skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$port/$path")
    mt=$(jq -r '.mediaType // ""' <<<"$raw")
    digest=sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)
    # For a multi-platform image the tag keeps linux/amd64 (airlock's and skopeo's default):
    # the digest to keep is that platform manifest's, byte for byte.
    case $mt in
    *manifest.list*|*image.index*)
      digest="$digest,$(jq -r '.manifests[] | select(.platform.os=="linux" and .platform.architecture=="amd64") | .digest' <<<"$raw" | head -1)"
      ;;
    esac
    printf '%02d\t%s\t127.0.0.1:%s/%s\t%s\t%s\t%s\n' "$n" "$src" "$port" "$path" "$priv" "$alt" "$digest" >>"$BENCH_WORK/images.tsv"
  done <"$BENCH_WORK/list.tsv"
  [ "$n" = 17 ] || { echo "expected 17 images, got $n" >&2; exit 1; }
}

bench_stop_upstream() {
  bench_stop_registry docker-io "$UP_DOCKER_PID"
  bench_stop_registry gcr-io "$UP_GCR_PID"
}

# bench_digest_ok N DIGEST: 1 if DIGEST is one image N should keep, else 0.
bench_digest_ok() {
  local want
  want=$(awk -F'\t' -v n="$1" '$1==n {print $6}' "$BENCH_WORK/images.tsv")
  case ",$want," in *",$2,"*) echo 1 ;; *) echo 0 ;; esac
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }

# timed LOG LABEL CMD...: runs CMD under /usr/bin/time, appending
# "LABEL rss_kb oblocks user_s sys_s" to LOG.
timed() {
  local log=$1 label=$2
  shift 2
  /usr/bin/time -a -o "$log" -f "$label %M %O %U %S" "$@"
}
export -f timed

# rss_of LOG: peak RSS (kB) of a run: per phase (label prefix before ':'), labels "par:*" are up
# to $BENCH_PAR concurrent processes (the largest summed), "pipe:*" run together (summed), others
# alone; the run's peak is the largest phase.
rss_of() {
  awk -v par="$BENCH_PAR" '
    $1 ~ /^par:/ { split($1, a, ":"); k = a[2]; n[k]++; v[k, n[k]] = $2; next }
    $1 ~ /^pipe:/ { split($1, a, ":"); pipe[a[2]] += $2; next }
    { if ($2 > alone) alone = $2 }
    END {
      best = alone
      for (k in n) {
        # sum of the `par` largest of phase k
        m = n[k]; for (i = 1; i <= m; i++) w[i] = v[k, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (w[j] > w[i]) { t = w[i]; w[i] = w[j]; w[j] = t }
        s = 0; for (i = 1; i <= m && i <= par; i++) s += w[i]
        if (s > best) best = s
      }
      for (k in pipe) if (pipe[k] > best) best = pipe[k]
      print best
    }' "$1"
}
# rss_single LOG: the largest single process.
rss_single() { awk '$2 > m { m = $2 } END { print m + 0 }' "$1"; }
# written_of LOG [LABEL-REGEX]: bytes written to file systems by the logged processes.
written_of() { awk -v re="${2:-.}" '$1 ~ re { s += $3 } END { printf "%d\n", s * 512 }' "$1"; }

# cpu_of LOG: CPU seconds (user + system) of every logged process: robust against a busy machine.
cpu_of() { awk '{ s += $4 + $5 } END { printf "%.2f\n", s }' "$1"; }

dir_bytes() { local b; b=$(du -sb "$1" 2>/dev/null | cut -f1); echo "${b:-0}"; }

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }

# ---------------------------------------------------------------- pack ---------------------
# Each pack_* takes a run directory; it writes $run/bundle.tar.zst and sets
# R_TIME R_RSS R_RSS1 R_SIZE R_KEPT R_EXTRA (peak intermediate bytes on disk).

# pack_airlock RUN [cache]: `airlock pack --no-cache` (the one-shot mode, like the skopeo
# ways: nothing kept), or with "cache" a pack into a fresh --cache (the default mode, which
# keeps every blob for the next pack).
pack_airlock() {
  local run=$1 log=$1/time.log t cache_args=(--no-cache)
  mkdir -p "$run"
  [ "${2:-}" = cache ] && cache_args=(--cache "$run/cache")
  t=$(now)
  timed "$log" airlock "$AIRLOCK" pack "${BENCH_SELECT[@]}" -q -o "$run/bundle.tar.zst" \
    "${cache_args[@]}" "${UP_MIRRORS[@]}" >"$run/pack.txt"
  R_TIME=$(elapsed "$t")
  R_RSS=$(rss_of "$log")
  R_CPU=$(cpu_of "$log")
  R_RSS1=$(rss_single "$log")
  R_SIZE=$(stat -c %s "$run/bundle.tar.zst")
  R_EXTRA=$(dir_bytes "$run/cache")
  # The digest stored per image, from the bundle's own bundle.json.
  { zstd -dcq "$run/bundle.tar.zst" || true; } | tar -xO --occurrence=1 -f - bundle.json >"$run/bundle.json"
  R_DEDUP=$(jq '.blobs.bytes' "$run/bundle.json")
  R_KEPT=0
  local src d n
  while IFS=$'\t' read -r src d; do
    n=$(awk -F'\t' -v s="$src" '$2==s {print $1}' "$BENCH_WORK/images.tsv")
    R_KEPT=$((R_KEPT + $(bench_digest_ok "$n" "$d")))
  done < <(jq -r '.images[] | [.source, .digest] | @tsv' "$run/bundle.json")
  rm -rf "$run/cache"
}

# pack_scratch_peak RUN: an untimed `airlock pack --no-cache`, sampling every 20 ms the bytes
# its temporary download directory holds beside the output; sets R_PEAK (the largest sample)
# and R_LEFT (bytes left beside the bundle afterwards).
pack_scratch_peak() {
  local run=$1 peak=0 b pid
  mkdir -p "$run"
  "$AIRLOCK" pack "${BENCH_SELECT[@]}" -q -o "$run/bundle.tar.zst" --no-cache "${UP_MIRRORS[@]}" >/dev/null &
  pid=$!
  BENCH_PIDS+=("$pid")
  while kill -0 "$pid" 2>/dev/null; do
    # Before the directory exists and after it is gone, du finds nothing (and fails).
    b=$({ du -sb "$run"/.bundle.tar.zst.blobs-* 2>/dev/null || true; } | awk '{ s += $1 } END { printf "%d\n", s }')
    [ "$b" -gt "$peak" ] && peak=$b
    sleep 0.02
  done
  wait "$pid" || { echo "bench: the untimed pack --no-cache failed" >&2; exit 1; }
  R_PEAK=$peak
  # What is left beside the bundle and its .sha256 (nothing, if the directory was removed).
  R_LEFT=$(find "$run" -mindepth 1 ! -name bundle.tar.zst ! -name bundle.tar.zst.sha256 -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }')
}

# The write+fsync limit in the pack rotation: dd of the last airlock bundle (653 MiB at scale 1,
# in the page cache) to a new file, fsynced. Needs $BENCH_WORK/bundle-airlock.tar.zst.
pack_fsync() {
  local run=$1 src=$BENCH_WORK/bundle-airlock.tar.zst t
  mkdir -p "$run"
  cat "$src" >/dev/null # in the page cache, as pack's input is in the upstream's
  t=$(now)
  dd if="$src" of="$run/fsync.out" bs=4M conv=fsync status=none
  R_TIME=$(elapsed "$t")
  R_RSS=0; R_CPU=0; R_KEPT=0
  R_SIZE=$(stat -c %s "$run/fsync.out")
  R_EXTRA=$R_SIZE
}

# One image into its own OCI layout, blobs in the shared dir (run by xargs).
_oci_copy_one() {
  local run=$1 n=$2 up=$3
  timed "$run/time.log" par:copy skopeo copy -q --src-tls-verify=false \
    --dest-shared-blob-dir "$run/layout/blobs" "docker://$up" "oci:$run/img/$n:img$n"
}
export -f _oci_copy_one
_dir_copy_one() {
  local run=$1 n=$2 up=$3
  timed "$run/time.log" par:copy skopeo copy -q --src-tls-verify=false "docker://$up" "dir:$run/layout/img$n"
}
export -f _dir_copy_one

pack_oci() {
  local run=$1 log=$1/time.log t
  mkdir -p "$run/layout/blobs" "$run/img"
  t=$(now)
  cut -f1,3 "$BENCH_WORK/images.tsv" | xargs -P "$BENCH_PAR" -L1 bash -c '_oci_copy_one "$0" "$1" "$2"' "$run"
  # Merge the per-image index.json files into one layout.
  jq -s '{schemaVersion: 2, manifests: [.[].manifests[]]}' "$run"/img/*/index.json >"$run/layout/index.json"
  cp "$(ls -d "$run"/img/*/oci-layout | head -1)" "$run/layout/oci-layout"
  (cd "$run/layout" && timed "$log" pipe:archive tar -cf - oci-layout index.json blobs) |
    timed "$log" pipe:archive zstd -T0 -q -o "$run/bundle.tar.zst"
  R_TIME=$(elapsed "$t")
  R_RSS=$(rss_of "$log")
  R_CPU=$(cpu_of "$log")
  R_RSS1=$(rss_single "$log")
  R_SIZE=$(stat -c %s "$run/bundle.tar.zst")
  R_EXTRA=$(dir_bytes "$run/layout")
  R_KEPT=0
  local n d
  while IFS=$'\t' read -r n d; do
    R_KEPT=$((R_KEPT + $(bench_digest_ok "${n#img}" "$d")))
  done < <(jq -r '.manifests[] | [.annotations["org.opencontainers.image.ref.name"], .digest] | @tsv' "$run/layout/index.json")
  rm -rf "$run/layout" "$run/img"
}

pack_dir() {
  local run=$1 log=$1/time.log t
  mkdir -p "$run/layout"
  t=$(now)
  cut -f1,3 "$BENCH_WORK/images.tsv" | xargs -P "$BENCH_PAR" -L1 bash -c '_dir_copy_one "$0" "$1" "$2"' "$run"
  (cd "$run/layout" && timed "$log" pipe:archive tar -cf - .) |
    timed "$log" pipe:archive zstd -T0 -q -o "$run/bundle.tar.zst"
  R_TIME=$(elapsed "$t")
  R_RSS=$(rss_of "$log")
  R_CPU=$(cpu_of "$log")
  R_RSS1=$(rss_single "$log")
  R_SIZE=$(stat -c %s "$run/bundle.tar.zst")
  R_EXTRA=$(dir_bytes "$run/layout")
  R_KEPT=0
  local m n
  for m in "$run"/layout/img*/manifest.json; do
    n=$(basename "$(dirname "$m")")
    R_KEPT=$((R_KEPT + $(bench_digest_ok "${n#img}" "sha256:$(sha256sum <"$m" | cut -d' ' -f1)")))
  done
  rm -rf "$run/layout"
}

# -------------------------------------------------------------- unpack ---------------------
# Each unpack_* takes a run directory and a bundle made by the matching pack_*, pushes into a
# fresh registry, and sets R_TIME R_RSS R_RSS1 R_EXTRA (peak extra bytes on disk) R_KEPT.

# Digests in the target registry equal to upstream, over every image's private path.
_target_kept() {
  local port=$1 n src up priv alt want d kept=0
  while IFS=$'\t' read -r n src up priv alt want; do
    d=sha256:$(skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$port/$priv" 2>/dev/null | sha256sum | cut -d' ' -f1)
    kept=$((kept + $(bench_digest_ok "$n" "$d")))
  done <"$BENCH_WORK/images.tsv"
  echo "$kept"
}

unpack_airlock() {
  local run=$1 bundle=$2 log=$1/time.log t
  mkdir -p "$run"
  bench_start_registry "private-$(basename "$run")"
  local port=$REG_PORT pid=$REG_PID
  t=$(now)
  # Through a pipe (stderr too), so the report is not counted as bytes airlock wrote to disk.
  timed "$log" airlock "$AIRLOCK" unpack -q "$bundle" --registry "http://127.0.0.1:$port" 2>&1 | cat >"$run/report.txt"
  R_TIME=$(elapsed "$t")
  R_RSS=$(rss_of "$log")
  R_CPU=$(cpu_of "$log")
  R_RSS1=$R_RSS
  R_EXTRA=$(written_of "$log")
  R_KEPT=$(_target_kept "$port")
  bench_stop_registry "private-$(basename "$run")" "$pid"
}

_oci_push_one() {
  local run=$1 n=$2 target=$3 port=$4
  timed "$run/time.log" par:push skopeo copy -q --dest-tls-verify=false \
    "oci:$run/x:img$n" "docker://127.0.0.1:$port/$target"
}
export -f _oci_push_one
_dir_push_one() {
  local run=$1 n=$2 target=$3 port=$4
  timed "$run/time.log" par:push skopeo copy -q --dest-tls-verify=false \
    "dir:$run/x/img$n" "docker://127.0.0.1:$port/$target"
}
export -f _dir_push_one

# Every (image, path) pair to push: the private path and, for pause, its second path.
_push_list() {
  awk -F'\t' '{ print $1 "\t" $4; if ($5 != "-") print $1 "\t" $5 }' "$BENCH_WORK/images.tsv"
}

_unpack_peer() {
  local kind=$1 run=$2 bundle=$3 log=$2/time.log t
  mkdir -p "$run/x"
  bench_start_registry "private-$(basename "$run")"
  local port=$REG_PORT pid=$REG_PID
  t=$(now)
  timed "$log" pipe:extract zstd -dcq "$bundle" | (cd "$run/x" && timed "$log" pipe:extract tar -xf -)
  R_EXTRA=$(dir_bytes "$run/x")
  _push_list | xargs -P "$BENCH_PAR" -L1 bash -c "_${kind}_push_one \"\$0\" \"\$1\" \"\$2\" $port" "$run"
  rm -rf "$run/x"
  R_TIME=$(elapsed "$t")
  R_RSS=$(rss_of "$log")
  R_CPU=$(cpu_of "$log")
  R_RSS1=$(rss_single "$log")
  R_KEPT=$(_target_kept "$port")
  bench_stop_registry "private-$(basename "$run")" "$pid"
}
unpack_oci() { _unpack_peer oci "$@"; }
unpack_dir() { _unpack_peer dir "$@"; }

# -------------------------------------------------------------- verify ---------------------
verify_airlock() {
  local run=$1 bundle=$2 log=$1/time.log t
  mkdir -p "$run"
  t=$(now)
  timed "$log" airlock "$AIRLOCK" verify -q "$bundle" >/dev/null
  R_TIME=$(elapsed "$t")
  R_RSS=$(rss_of "$log")
  R_CPU=$(cpu_of "$log")
}

# zstd -d | tar -x, then sha256sum of every blob (nproc in parallel), each checked against its name.
verify_tar() {
  local run=$1 bundle=$2 log=$1/time.log t bad
  mkdir -p "$run/x"
  t=$(now)
  timed "$log" pipe:extract zstd -dcq "$bundle" | (cd "$run/x" && timed "$log" pipe:extract tar -xf -)
  bad=$(cd "$run/x/blobs/sha256" && find . -type f -printf '%f\n' |
    xargs -P "$(nproc)" -n 16 /usr/bin/time -a -o "$log" -f "par:hash %M %O %U %S" sha256sum |
    awk '{ sub(/^\.\//, "", $2); if ($1 != $2) n++ } END { print n + 0 }')
  R_TIME=$(elapsed "$t")
  R_RSS=$(rss_of "$log")
  R_CPU=$(cpu_of "$log")
  rm -rf "$run/x"
  [ "$bad" = 0 ] || { echo "verify_tar: $bad blobs do not match their names" >&2; exit 1; }
}

# -------------------------------------------------------------- limits ---------------------
# bench_limits BUNDLE: sets L_* (seconds) and L_*_BYTES for the bytes each one moved.
bench_limits() {
  local bundle=$1 dir=$BENCH_WORK/limits t
  mkdir -p "$dir/x"
  zstd -dcq "$bundle" >"$dir/bundle.tar"
  (cd "$dir/x" && tar -xf "$dir/bundle.tar")
  L_TAR_BYTES=$(stat -c %s "$dir/bundle.tar")
  cat "$dir/bundle.tar" >/dev/null # warm the page cache

  t=$(now); sha256sum "$dir/bundle.tar" >/dev/null; L_SHA256SUM=$(elapsed "$t")
  t=$(now); openssl dgst -sha256 "$dir/bundle.tar" >/dev/null; L_OPENSSL=$(elapsed "$t")
  t=$(now); zstd -dcq "$bundle" >/dev/null; L_ZSTD_D=$(elapsed "$t")
  sync
  t=$(now); dd if="$dir/bundle.tar" of="$dir/fsync.out" bs=4M conv=fsync status=none; L_FSYNC=$(elapsed "$t")
  rm -f "$dir/fsync.out"

  # Raw HTTP: one large blob up (POST, then a single PUT with ?digest=), then down again.
  bench_start_registry limits
  local port=$REG_PORT pid=$REG_PID big hex loc
  big=$(find "$dir/x/blobs/sha256" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
  hex=$(basename "$big")
  L_BLOB_BYTES=$(stat -c %s "$big")
  t=$(now)
  loc=$(curl -sS -f -o /dev/null -D - -X POST "http://127.0.0.1:$port/v2/limits/one/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  case $loc in /*) loc="http://127.0.0.1:$port$loc" ;; esac
  case $loc in *\?*) loc="$loc&digest=sha256:$hex" ;; *) loc="$loc?digest=sha256:$hex" ;; esac
  curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' -T "$big" "$loc"
  L_UPLOAD=$(elapsed "$t")
  t=$(now)
  curl -sS -f -o /dev/null "http://127.0.0.1:$port/v2/limits/one/blobs/sha256:$hex"
  L_DOWNLOAD=$(elapsed "$t")
  bench_stop_registry limits "$pid"

  # The registry's raw ingest of every blob of the bundle: the same POST + PUT per blob, by two
  # curl processes (every POST, then every PUT $BENCH_PAR at a time), into a fresh registry (no
  # manifests, no HEADs, no mounts, no process per blob).
  bench_start_registry ingest
  port=$REG_PORT pid=$REG_PID
  L_INGEST_BYTES=$(dir_bytes "$dir/x/blobs")
  find "$dir/x/blobs/sha256" -type f | sort >"$dir/blobs.txt"
  local f i t_post t_put
  # One option group per transfer (curl config "next" between them); groups run in parallel.
  i=0
  while read -r f; do
    i=$((i + 1))
    [ "$i" = 1 ] || echo next
    printf 'silent\nshow-error\nfail\nrequest = "POST"\nurl = "http://127.0.0.1:%s/v2/limits/all/blobs/uploads/"\noutput = "/dev/null"\ndump-header = "%s/h.%06d"\n' "$port" "$dir" "$i"
  done <"$dir/blobs.txt" >"$dir/post.cfg"
  t=$(now)
  curl --no-progress-meter --parallel --parallel-max "$BENCH_PAR" -K "$dir/post.cfg"
  t_post=$(elapsed "$t")
  i=0
  while read -r f; do
    i=$((i + 1))
    loc=$(tr -d '\r' <"$dir/$(printf 'h.%06d' "$i")" | awk 'tolower($1) == "location:" { print $2 }')
    case $loc in /*) loc="http://127.0.0.1:$port$loc" ;; esac
    case $loc in *\?*) loc="$loc&digest=sha256:${f##*/}" ;; *) loc="$loc?digest=sha256:${f##*/}" ;; esac
    [ "$i" = 1 ] || echo next
    printf 'silent\nshow-error\nfail\nheader = "Content-Type: application/octet-stream"\nheader = "Expect:"\nupload-file = "%s"\nurl = "%s"\noutput = "/dev/null"\n' "$f" "$loc"
  done <"$dir/blobs.txt" >"$dir/put.cfg"
  t=$(now)
  curl --no-progress-meter --parallel --parallel-max "$BENCH_PAR" -K "$dir/put.cfg"
  t_put=$(elapsed "$t")
  # Timed: the requests only, not the shell building the curl configs.
  L_INGEST=$(awk -v a="$t_post" -v b="$t_put" 'BEGIN { printf "%.3f", a + b }')
  # Every blob must be there now.
  i=0
  while read -r f; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$port/v2/limits/all/blobs/sha256:${f##*/}")" = 200 ] || i=$((i + 1))
  done <"$dir/blobs.txt"
  [ "$i" = 0 ] || { echo "raw ingest: $i blobs missing" >&2; exit 1; }
  if [ -n "${BENCH_DEBUG:-}" ]; then echo "ingest: POST $t_post s, PUT $t_put s" >&2; fi
  bench_stop_registry ingest "$pid"
  rm -rf "$dir"
}

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / s / 1e6; else print "inf" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
