# shellcheck shell=bash
# Shared functions of scripts/bench.sh, scripts/bench-pack.sh and scripts/bench-unpack.sh.
# Source it from a bash script running with `set -euo pipefail`; call bench_init first.
#
# Everything listens on and talks to 127.0.0.1 only. Every registry and proxy started here runs
# with a temporary directory under $BENCH_WORK and is stopped by the EXIT trap bench_init sets.
#
# Measuring: each process runs under `/usr/bin/time`, which appends "LABEL PEAK_RSS_KB
# FS_OUTPUT_BLOCKS USER_S SYS_S" to a file; a run's peak RSS is the largest sum of processes that
# ran at the same time (4 parallel skopeo copies: the 4 largest; a pipeline: its parts summed);
# its written bytes are the file-system output blocks (ru_oublock, 512 bytes each); its CPU time
# is user + system seconds summed over its processes (the registries' own CPU is not included).
#
# A contender's timer covers its work only. What is measured about it afterwards (disk use, the
# digests it kept) and its cleanup run after the timer stops, the same way for every contender.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AIRLOCK=$BENCH_ROOT/target/release/airlock
FIXTURES=$BENCH_ROOT/target/release/airlock-fixtures
BENCH_PIDS=()
BENCH_WORK=""
BENCH_TEMPLATE=v1.8.5-rancher4
BENCH_SELECT=(--version 1.6.14 --k8s-template "$BENCH_TEMPLATE" --only pause --only infra --only addons)
# skopeo copies at a time, in the ways a user scripts with public tools.
BENCH_PAR=4
# airlock unpack's parallel uploads (its default, passed explicitly) and the raw-ingest limit's.
AIRLOCK_JOBS=6
# One-way delay of the slow link (issue 13), in milliseconds.
LAT_DELAY_MS=25

bench_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs the Debian packages providing the tools, or fails naming them.
bench_deps() {
  local need=() pair
  for pair in /usr/bin/docker-registry:docker-registry /usr/bin/skopeo:skopeo /usr/bin/zstd:zstd \
    /usr/bin/time:time /usr/bin/jq:jq /usr/bin/curl:curl /usr/bin/openssl:openssl \
    /usr/bin/sha256sum:coreutils /usr/bin/tar:tar /usr/bin/python3:python3; do
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

# quiet CMD...: runs CMD with its output in a log, shown only if it fails.
quiet() {
  local log=$BENCH_WORK/quiet.log
  "$@" >"$log" 2>&1 || { echo "bench: $* failed:" >&2; cat "$log" >&2; return 1; }
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

# bench_tls_init: a private CA and a server certificate for 127.0.0.1 signed by it, made the
# way an operator makes them with openssl; sets TLS_DIR, TLS_CA (for airlock --ca-file) and
# TLS_CERT_DIR (the CA as ca.crt, for skopeo --dest-cert-dir / --cert-dir).
bench_tls_init() {
  TLS_DIR=$BENCH_WORK/tls
  TLS_CA=$TLS_DIR/ca.crt
  TLS_CERT_DIR=$TLS_DIR/certs.d
  [ -f "$TLS_CA" ] && return 0
  mkdir -p "$TLS_CERT_DIR"
  quiet openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=airlock bench CA" \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  quiet openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr"
  printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$TLS_DIR/server.ext"
  quiet openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_CA" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days 2 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.crt"
  cp "$TLS_CA" "$TLS_CERT_DIR/ca.crt"
}

# bench_start_registry NAME [tls|schema1]: starts a distribution registry on 127.0.0.1 with its
# own data dir (https with the bench CA's certificate, or storing schema 1 manifests, when
# asked); sets REG_PORT and REG_PID (no subshell, so the pid is tracked for the trap). Used by
# scripts/demo.sh too.
bench_start_registry() {
  local name=$1 tls=${2:-} port dir try _ tls_yaml="" more_yaml=""
  dir=$BENCH_WORK/reg-$name
  if [ "$tls" = tls ]; then
    bench_tls_init
    tls_yaml=", tls: {certificate: $TLS_DIR/server.crt, key: $TLS_DIR/server.key}"
  fi
  # distribution 2.7+ stores schema 1 manifests only when told to.
  [ "$tls" = schema1 ] && more_yaml="compatibility: {schema1: {enabled: true}}"
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
http: {addr: 127.0.0.1:$port$tls_yaml}
$more_yaml
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

# bench_start_latency TARGET_PORT: a proxy on 127.0.0.1 adding $LAT_DELAY_MS each way in front
# of 127.0.0.1:TARGET_PORT (scripts/bench-latency-proxy.py); sets LAT_PORT and LAT_PID.
bench_start_latency() {
  local out=$BENCH_WORK/latency-$1.port _
  python3 "$BENCH_ROOT/scripts/bench-latency-proxy.py" --target "127.0.0.1:$1" \
    --delay-ms "$LAT_DELAY_MS" >"$out" 2>"$out.err" &
  LAT_PID=$!
  BENCH_PIDS+=("$LAT_PID")
  for _ in $(seq 200); do
    LAT_PORT=$(head -1 "$out")
    [ -n "$LAT_PORT" ] && return 0
    kill -0 "$LAT_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "latency proxy did not start: $(cat "$out.err")" >&2
  exit 1
}

# bench_target KIND NAME: a fresh private registry to unpack into. KIND is plain, tls (https
# with the bench CA) or lat (plain, behind the latency proxy). Sets TGT_PORT (the registry
# itself, for checks), TGT_HOSTPORT (what clients are given), TGT_TLS (skopeo's TLS mode for
# it: "insecure" or "certs:DIR") and what bench_target_stop needs.
bench_target() {
  TGT_KIND=$1 TGT_NAME=$2 TGT_LAT_PID=""
  if [ "$TGT_KIND" = tls ]; then bench_start_registry "$TGT_NAME" tls; else bench_start_registry "$TGT_NAME"; fi
  TGT_PORT=$REG_PORT TGT_PID=$REG_PID TGT_HOSTPORT=127.0.0.1:$REG_PORT TGT_TLS=insecure
  [ "$TGT_KIND" = tls ] && TGT_TLS=certs:$TLS_CERT_DIR
  if [ "$TGT_KIND" = lat ]; then
    bench_start_latency "$TGT_PORT"
    TGT_LAT_PID=$LAT_PID TGT_HOSTPORT=127.0.0.1:$LAT_PORT
  fi
  return 0
}

bench_target_stop() {
  if [ -n "$TGT_LAT_PID" ]; then
    kill "$TGT_LAT_PID" 2>/dev/null || true
    wait "$TGT_LAT_PID" 2>/dev/null || true
  fi
  bench_stop_registry "$TGT_NAME" "$TGT_PID"
}

# skopeo's TLS arguments for MODE ("insecure" or "certs:DIR"): skopeo_tls MODE dest|src|inspect
skopeo_tls() {
  local verify=--tls-verify=false certs=--cert-dir
  [ "$2" = inspect ] || { verify=--$2-tls-verify=false; certs=--$2-cert-dir; }
  case $1 in insecure) echo "$verify" ;; certs:*) echo "$certs ${1#certs:}" ;; esac
}
export -f skopeo_tls

# bench_upstream SCALE: an upstream pair (docker.io, gcr.io stand-ins) seeded with the
# Rancher 1.6.14 set; sets UP_DOCKER, UP_GCR (ports) and writes $BENCH_WORK/images.tsv:
# "n  source  upstream-url-path  private-path  alt-path|-  expected-digest[,digest]".
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
  # Issue 12: airlock pins the gcr.io images to their real upstream digests, which generated
  # images cannot have (--pins: the fixtures' own), and by default converts OCI images for
  # Docker 17.03; --keep-digests stores every manifest as served, like the skopeo ways.
  "$FIXTURES" pins --set rancher-1.6.14 --scale "$scale" >"$BENCH_WORK/pins.txt"
  UP_MIRRORS+=(--pins "$BENCH_WORK/pins.txt" --keep-digests)
  "$AIRLOCK" list "${BENCH_SELECT[@]}" --format json |
    jq -r '.templates[].images[] | [.reference, .privatePath, (.altPaths[0] // "-")] | @tsv' |
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
  # The same images as lists for `pack --images`: by their public names (with --mirror), and by
  # the stand-ins' own HOST:PORT names, as a user lists images in a private registry.
  cut -f2 "$BENCH_WORK/images.tsv" >"$BENCH_WORK/images-public.txt"
  cut -f3 "$BENCH_WORK/images.tsv" >"$BENCH_WORK/images-hostport.txt"
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

# image_number REF: N of the image whose source reference (or HOST:PORT name) is REF.
image_number() { awk -F'\t' -v s="$1" '$2==s || $3==s {print $1}' "$BENCH_WORK/images.tsv"; }

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
      print best + 0
    }' "$1"
}
# rss_single LOG: the largest single process.
rss_single() { awk '$2 > m { m = $2 } END { print m + 0 }' "$1"; }
# written_of LOG: bytes written to file systems by the logged processes.
written_of() { awk '{ s += $3 } END { printf "%.0f\n", s * 512 }' "$1"; }
# cpu_of LOG: CPU seconds (user + system) of every logged process: robust against a busy machine.
cpu_of() { awk '{ s += $4 + $5 } END { printf "%.2f\n", s }' "$1"; }

# measured LOG: sets R_RSS R_RSS1 R_CPU R_WRITTEN from a run's time log (after its timer).
measured() {
  R_RSS=$(rss_of "$1")
  R_RSS1=$(rss_single "$1")
  R_CPU=$(cpu_of "$1")
  R_WRITTEN=$(written_of "$1")
}

# dir_bytes DIR: bytes under DIR (0 when it does not exist).
dir_bytes() {
  if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi
}

# (mawk prints large numbers as 3.4e+09 and %d stops at 2^31: %.15g keeps them whole.)
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) printf "%.15g\n", a[(NR + 1) / 2]; else printf "%.15g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }

# ------------------------------------------------------------- digests kept ----------------
# bundle_kept KIND BUNDLE DIR: hashes the manifests a bundle stores, as files, against the
# digests upstream serves: the image counts as kept when the file its tag points to hashes to
# its own name and to the digest upstream has. KIND is "layout" (an OCI image layout, whose
# index.json names each image: airlock's bundle and the OCI way) or "dir" (skopeo dir:, one
# directory per image with its manifest.json). Sets R_KEPT and R_BLOB_BYTES (the bytes of the
# bundle's blob entries). Every step reads the whole stream (no early exit, so no SIGPIPE to
# hide) and fails loudly.
bundle_kept() {
  local kind=$1 bundle=$2 dir=$3 n ref d hex f want=()
  mkdir -p "$dir"
  zstd -dcq "$bundle" | tar -tvf - >"$dir/list.txt"
  # (mawk, Debian's awk, has no {64}: the length says it.)
  R_BLOB_BYTES=$(awk '{ n = $6; sub(/^\.\//, "", n) }
    n ~ /^blobs\/sha256\/[0-9a-f]+$/ && length(n) == 77 { s += $3 } END { printf "%.0f\n", s }' "$dir/list.txt")
  R_KEPT=0
  if [ "$kind" = dir ]; then
    zstd -dcq "$bundle" | tar -xf - -C "$dir" --wildcards './img*/manifest.json'
    for f in "$dir"/img*/manifest.json; do
      n=$(basename "$(dirname "$f")")
      R_KEPT=$((R_KEPT + $(bench_digest_ok "${n#img}" "sha256:$(sha256sum <"$f" | cut -d' ' -f1)")))
    done
    rm -rf "$dir"
    return 0
  fi
  zstd -dcq "$bundle" | tar -xf - -C "$dir" index.json
  jq -r '.manifests[] | [.annotations["org.opencontainers.image.ref.name"], .digest] | @tsv' \
    "$dir/index.json" >"$dir/refs.tsv"
  while IFS=$'\t' read -r ref d; do
    if awk -v n="blobs/sha256/${d#sha256:}" '$6 == n { found = 1 } END { exit !found }' "$dir/list.txt"; then
      want+=("blobs/sha256/${d#sha256:}")
    else
      echo "bench: $bundle: $ref: manifest $d is not in the bundle" >&2
    fi
  done <"$dir/refs.tsv"
  [ ${#want[@]} -gt 0 ] && zstd -dcq "$bundle" | tar -xf - -C "$dir" "${want[@]}"
  while IFS=$'\t' read -r ref d; do
    hex=${d#sha256:}
    f=$dir/blobs/sha256/$hex
    [ -f "$f" ] || continue
    [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$hex" ] || { echo "bench: $bundle: $d does not hash to its name" >&2; continue; }
    # The OCI way names images img<N>; airlock by their source reference (a public name, or
    # the HOST:PORT one it was packed from).
    case $ref in img*) n=${ref#img} ;; *) n=$(image_number "$ref") ;; esac
    [ -n "$n" ] || { echo "bench: $bundle: unknown image $ref" >&2; continue; }
    R_KEPT=$((R_KEPT + $(bench_digest_ok "$n" "$d")))
  done <"$dir/refs.tsv"
  rm -rf "$dir"
}

# target_kept: how many of the 17 images the current target (bench_target) serves, at every path
# Rancher asks for, with the upstream digest, hashing the manifest bytes it serves (skopeo
# inspect --raw, asking the registry itself, not through the latency proxy). An image skopeo
# cannot read is not kept, and skopeo's error is shown.
target_kept() {
  local n src up priv alt want d p ok kept=0 raw err=$BENCH_WORK/inspect.err
  # shellcheck disable=SC2046
  while IFS=$'\t' read -r n src up priv alt want; do
    ok=1
    for p in "$priv" "$alt"; do
      [ "$p" = - ] && continue
      if raw=$(skopeo inspect --raw $(skopeo_tls "$TGT_TLS" inspect) "docker://127.0.0.1:$TGT_PORT/$p" 2>"$err"); then
        d=sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)
        [ "$(bench_digest_ok "$n" "$d")" = 1 ] || ok=0
      else
        echo "bench: target 127.0.0.1:$TGT_PORT/$p: $(head -1 "$err")" >&2
        ok=0
      fi
    done
    kept=$((kept + ok))
  done <"$BENCH_WORK/images.tsv"
  echo "$kept"
}

# ---------------------------------------------------------------- pack ---------------------
# Each pack_* takes a run directory; it writes $run/bundle.tar.zst and sets
# R_TIME R_RSS R_RSS1 R_CPU R_SIZE R_KEPT R_EXTRA (peak intermediate bytes on disk) R_WRITTEN.

# pack_airlock RUN [cache|hostport]: `airlock pack --no-cache` of the Rancher selection through
# --mirror http:// (the one-shot mode, like the skopeo ways: nothing kept); with "cache", a
# pack into a fresh --cache (the default mode, which keeps every blob for the next pack); with
# "public" or "hostport", `--images` of the public names (with --mirror http://) or of the
# stand-ins' HOST:PORT names with --insecure (issue 13: a user packing from a private
# plain-http registry).
pack_airlock() {
  local run=$1 log=$1/time.log t mode=${2:-} args=(--no-cache)
  mkdir -p "$run"
  case $mode in
  cache) args=(--cache "$run/cache" "${BENCH_SELECT[@]}" "${UP_MIRRORS[@]}") ;;
  public) args+=(--images "$BENCH_WORK/images-public.txt" "${UP_MIRRORS[@]}") ;;
  # The same manifests as the public way stores (--keep-digests): the ratio is the transport's.
  hostport) args+=(--images "$BENCH_WORK/images-hostport.txt" --insecure --keep-digests) ;;
  *) args+=("${BENCH_SELECT[@]}" "${UP_MIRRORS[@]}") ;;
  esac
  t=$(now)
  timed "$log" airlock "$AIRLOCK" pack -q -o "$run/bundle.tar.zst" "${args[@]}" >"$run/pack.txt"
  R_TIME=$(elapsed "$t")
  measured "$log"
  R_SIZE=$(stat -c %s "$run/bundle.tar.zst")
  R_EXTRA=$(dir_bytes "$run/cache")
  rm -rf "$run/cache"
  bundle_kept layout "$run/bundle.tar.zst" "$run/check"
  R_DEDUP=$R_BLOB_BYTES
}

# pack_scratch_peak RUN: an untimed `airlock pack --no-cache`, sampling every 20 ms the bytes
# its temporary download directory holds beside the output. Sets R_PEAK (the largest sample: a
# sample, not a bound; the directory may hold more between two samples), R_SAMPLES (how many
# samples saw the directory) and R_LEFT (bytes left beside the bundle afterwards).
pack_scratch_peak() {
  local run=$1 peak=0 b pid samples=0 d
  mkdir -p "$run"
  "$AIRLOCK" pack "${BENCH_SELECT[@]}" -q -o "$run/bundle.tar.zst" --no-cache "${UP_MIRRORS[@]}" >/dev/null &
  pid=$!
  BENCH_PIDS+=("$pid")
  while kill -0 "$pid" 2>/dev/null; do
    # The directory exists only while the pack runs; between the glob and du it may go.
    for d in "$run"/.bundle.tar.zst.blobs-*; do
      [ -d "$d" ] || continue
      if b=$(du -sb "$d" 2>/dev/null); then
        b=${b%%[[:space:]]*}
        samples=$((samples + 1))
        [ "$b" -gt "$peak" ] && peak=$b
      fi
    done
    sleep 0.02
  done
  wait "$pid" || { echo "bench: the untimed pack --no-cache failed" >&2; exit 1; }
  R_PEAK=$peak R_SAMPLES=$samples
  [ "$samples" -gt 0 ] || { echo "bench: no sample saw the --no-cache download directory" >&2; exit 1; }
  # What is left beside the bundle and its .sha256 (nothing, if the directory was removed).
  R_LEFT=$(find "$run" -mindepth 1 ! -name bundle.tar.zst ! -name bundle.tar.zst.sha256 -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }')
}

# The write+fsync limit in the pack rotation: dd of the last airlock bundle (653 MiB at scale 1,
# in the page cache) to a new file, fsynced. Needs $BENCH_WORK/bundle-airlock.tar.zst.
pack_fsync() {
  local run=$1 src=$BENCH_WORK/bundle-airlock.tar.zst t
  mkdir -p "$run"
  cat "$src" >/dev/null # in the page cache, as pack's input is in the upstream's
  t=$(now)
  timed "$run/time.log" dd dd if="$src" of="$run/bundle.tar.zst" bs=4M conv=fsync status=none
  R_TIME=$(elapsed "$t")
  measured "$run/time.log"
  R_KEPT=- R_EXTRA=0
  R_SIZE=$(stat -c %s "$run/bundle.tar.zst")
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

# The archive step of both skopeo ways. zstd gets the treatment airlock's frames get where a
# tool can give it: --fast, since gzip layers do not compress further (airlock stores such
# frames raw). Every thread, as airlock uses every core.
_archive() { # RUN TAR-ARGS...
  local run=$1
  shift
  (cd "$run/layout" && timed "$run/time.log" pipe:archive tar -cf - "$@") |
    timed "$run/time.log" pipe:archive zstd -T0 --fast -q -o "$run/bundle.tar.zst"
}

pack_oci() {
  local run=$1 t
  mkdir -p "$run/layout/blobs" "$run/img"
  t=$(now)
  cut -f1,3 "$BENCH_WORK/images.tsv" | xargs -P "$BENCH_PAR" -L1 bash -c '_oci_copy_one "$0" "$1" "$2"' "$run"
  # Merge the per-image index.json files into one layout.
  jq -s '{schemaVersion: 2, manifests: [.[].manifests[]]}' "$run"/img/*/index.json >"$run/layout/index.json"
  cp "$(ls -d "$run"/img/*/oci-layout | head -1)" "$run/layout/oci-layout"
  _archive "$run" oci-layout index.json blobs
  R_TIME=$(elapsed "$t")
  measured "$run/time.log"
  R_SIZE=$(stat -c %s "$run/bundle.tar.zst")
  R_EXTRA=$(($(dir_bytes "$run/layout") + $(dir_bytes "$run/img")))
  rm -rf "$run/layout" "$run/img"
  bundle_kept layout "$run/bundle.tar.zst" "$run/check"
}

pack_dir() {
  local run=$1 t
  mkdir -p "$run/layout"
  t=$(now)
  cut -f1,3 "$BENCH_WORK/images.tsv" | xargs -P "$BENCH_PAR" -L1 bash -c '_dir_copy_one "$0" "$1" "$2"' "$run"
  _archive "$run" .
  R_TIME=$(elapsed "$t")
  measured "$run/time.log"
  R_SIZE=$(stat -c %s "$run/bundle.tar.zst")
  R_EXTRA=$(dir_bytes "$run/layout")
  rm -rf "$run/layout"
  bundle_kept dir "$run/bundle.tar.zst" "$run/check"
}

# -------------------------------------------------------------- unpack ---------------------
# Each unpack_* takes a run directory and a bundle made by the matching pack_*, pushes into a
# fresh registry (bench_target), and sets R_TIME R_RSS R_RSS1 R_CPU R_WRITTEN R_EXTRA (peak
# extra bytes on disk) R_KEPT.

# unpack_airlock RUN BUNDLE [WAY]: WAY is how the registry is given, as a user would:
#   http      --registry http://HOST:PORT (plain http, said so)
#   insecure  --registry HOST:PORT --insecure (plain http, found by airlock; the README's way)
#   tls       --registry HOST:PORT --ca-file ca.crt (https, a private CA)
#   lat       --registry http://HOST:PORT through the latency proxy
# With BENCH_KEEP_TARGET set, the target stays up afterwards (bench_target_stop ends it).
unpack_airlock() {
  local run=$1 bundle=$2 way=${3:-http} kind=plain t args
  case $way in tls) kind=tls ;; lat) kind=lat ;; esac
  mkdir -p "$run"
  bench_target "$kind" "private-$(basename "$run")"
  args=$(airlock_registry_args "$way")
  t=$(now)
  # Through a pipe (stderr too), so the report is not counted as bytes airlock wrote to disk.
  # shellcheck disable=SC2086
  timed "$run/time.log" airlock "$AIRLOCK" unpack -q --jobs "$AIRLOCK_JOBS" "$bundle" $args 2>&1 | cat >"$run/report.txt"
  R_TIME=$(elapsed "$t")
  measured "$run/time.log"
  R_EXTRA=$R_WRITTEN
  R_KEPT=$(target_kept)
  [ -n "${BENCH_KEEP_TARGET:-}" ] || bench_target_stop
}

# airlock_registry_args WAY: the --registry arguments of WAY for the current target.
airlock_registry_args() {
  case $1 in
  http | lat) echo "--registry http://$TGT_HOSTPORT" ;;
  insecure) echo "--registry $TGT_HOSTPORT --insecure" ;;
  tls) echo "--registry $TGT_HOSTPORT --ca-file $TLS_CA" ;;
  esac
}

_oci_push_one() {
  local run=$1 n=$2 target=$3 hostport=$4 tls=$5
  # shellcheck disable=SC2046
  timed "$run/time.log" par:push skopeo copy -q $(skopeo_tls "$tls" dest) \
    "oci:$run/x:img$n" "docker://$hostport/$target"
}
export -f _oci_push_one
_dir_push_one() {
  local run=$1 n=$2 target=$3 hostport=$4 tls=$5
  # shellcheck disable=SC2046
  timed "$run/time.log" par:push skopeo copy -q $(skopeo_tls "$tls" dest) \
    "dir:$run/x/img$n" "docker://$hostport/$target"
}
export -f _dir_push_one

# Every (image, path) pair to push: the private path and, for pause, its second path.
_push_list() {
  awk -F'\t' '{ print $1 "\t" $4; if ($5 != "-") print $1 "\t" $5 }' "$BENCH_WORK/images.tsv"
}

# _unpack_peer KIND RUN BUNDLE [TARGET-KIND]: zstd -d | tar -x, then skopeo copy of every image
# from the OCI layout (KIND oci) or the dir: directories (dir), $BENCH_PAR at a time, into a
# fresh plain, tls or lat target (skopeo --dest-tls-verify=false, or --dest-cert-dir for tls).
_unpack_peer() {
  local kind=$1 run=$2 bundle=$3 tkind=${4:-plain} log=$2/time.log t
  mkdir -p "$run/x"
  bench_target "$tkind" "private-$(basename "$run")"
  t=$(now)
  timed "$log" pipe:extract zstd -dcq "$bundle" | (cd "$run/x" && timed "$log" pipe:extract tar -xf -)
  _push_list | xargs -P "$BENCH_PAR" -L1 bash -c "_${kind}_push_one \"\$0\" \"\$1\" \"\$2\" $TGT_HOSTPORT $TGT_TLS" "$run"
  R_TIME=$(elapsed "$t")
  measured "$log"
  R_EXTRA=$(dir_bytes "$run/x")
  rm -rf "$run/x"
  R_KEPT=$(target_kept)
  bench_target_stop
}
unpack_oci() { _unpack_peer oci "$@"; }
unpack_dir() { _unpack_peer dir "$@"; }

# The registry's raw ingest of every blob of the bundle, as a limit inside the unpack rotation:
# POST + PUT per blob by curl (every POST, then every PUT), $AIRLOCK_JOBS at a time as airlock
# uploads, into a fresh registry, from blobs extracted beforehand (untimed, $BENCH_WORK/src):
# no manifests, no HEADs, no mounts, no hashing on the client. Timed: the requests only, not the
# shell building curl's configuration between the two phases.
unpack_ingest() {
  local run=$1 f i loc t t_post t_put port
  mkdir -p "$run"
  bench_target plain "private-$(basename "$run")"
  port=$TGT_PORT
  # One option group per transfer (curl config "next" between them); groups run in parallel.
  i=0
  while read -r f; do
    i=$((i + 1))
    [ "$i" = 1 ] || echo next
    printf 'silent\nshow-error\nfail\nrequest = "POST"\nurl = "http://127.0.0.1:%s/v2/limits/all/blobs/uploads/"\noutput = "/dev/null"\ndump-header = "%s/h.%06d"\n' "$port" "$run" "$i"
  done <"$BENCH_WORK/src/blobs.txt" >"$run/post.cfg"
  t=$(now)
  timed "$run/time.log" curl curl --no-progress-meter --parallel --parallel-max "$AIRLOCK_JOBS" -K "$run/post.cfg"
  t_post=$(elapsed "$t")
  i=0
  while read -r f; do
    i=$((i + 1))
    loc=$(tr -d '\r' <"$run/$(printf 'h.%06d' "$i")" | awk 'tolower($1) == "location:" { print $2 }')
    case $loc in /*) loc="http://127.0.0.1:$port$loc" ;; esac
    case $loc in *\?*) loc="$loc&digest=sha256:${f##*/}" ;; *) loc="$loc?digest=sha256:${f##*/}" ;; esac
    [ "$i" = 1 ] || echo next
    printf 'silent\nshow-error\nfail\nheader = "Content-Type: application/octet-stream"\nheader = "Expect:"\nupload-file = "%s"\nurl = "%s"\noutput = "/dev/null"\n' "$f" "$loc"
  done <"$BENCH_WORK/src/blobs.txt" >"$run/put.cfg"
  t=$(now)
  timed "$run/time.log" curl curl --no-progress-meter --parallel --parallel-max "$AIRLOCK_JOBS" -K "$run/put.cfg"
  t_put=$(elapsed "$t")
  R_TIME=$(awk -v a="$t_post" -v b="$t_put" 'BEGIN { printf "%.3f", a + b }')
  measured "$run/time.log"
  R_EXTRA=0 R_KEPT=-
  # Every blob must be there now.
  i=0
  while read -r f; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$port/v2/limits/all/blobs/sha256:${f##*/}")" = 200 ] || i=$((i + 1))
  done <"$BENCH_WORK/src/blobs.txt"
  [ "$i" = 0 ] || { echo "raw ingest: $i blobs missing" >&2; exit 1; }
  bench_target_stop
}

# bench_extract BUNDLE: the bundle's blobs as files under $BENCH_WORK/src (for the limits that
# read blobs: raw ingest, hashing), listed largest first in $BENCH_WORK/src/blobs.txt.
bench_extract() {
  rm -rf "$BENCH_WORK/src"
  mkdir -p "$BENCH_WORK/src"
  zstd -dcq "$1" | tar -xf - -C "$BENCH_WORK/src" blobs
  find "$BENCH_WORK/src/blobs/sha256" -type f -printf '%s %p\n' | sort -rn | cut -d' ' -f2 >"$BENCH_WORK/src/blobs.txt"
}

# warm_src: the extracted blobs into the page cache, as the bundle is before unpack.
warm_src() { xargs cat <"$BENCH_WORK/src/blobs.txt" >/dev/null; }

# -------------------------------------------------------------- verify ---------------------
verify_airlock() {
  local run=$1 bundle=$2 t
  mkdir -p "$run"
  t=$(now)
  timed "$run/time.log" airlock "$AIRLOCK" verify -q "$bundle" >/dev/null
  R_TIME=$(elapsed "$t")
  measured "$run/time.log"
  R_EXTRA=$R_WRITTEN
}

# zstd -d | tar -x, then sha256sum of every blob, each its own process, nproc at a time (the
# largest first, so the last to start is a small one), each checked against its name.
verify_tar() {
  local run=$1 bundle=$2 log=$1/time.log t
  mkdir -p "$run/x"
  t=$(now)
  timed "$log" pipe:extract zstd -dcq "$bundle" | (cd "$run/x" && timed "$log" pipe:extract tar -xf -)
  (cd "$run/x/blobs/sha256" && find . -type f -printf '%s %f\n' | sort -rn | cut -d' ' -f2 |
    xargs -P "$(nproc)" -n 1 /usr/bin/time -a -o "$log" -f "par:hash %M %O %U %S" sha256sum) >"$run/sums.txt"
  R_TIME=$(elapsed "$t")
  measured "$log"
  R_EXTRA=$(dir_bytes "$run/x")
  rm -rf "$run/x"
  awk '{ sub(/^\.\//, "", $2); if ($1 != $2) n++ } END { exit n > 0 }' "$run/sums.txt" ||
    { echo "verify_tar: blobs do not match their names" >&2; exit 1; }
}

# The hashing limit at every core: openssl dgst -sha256 (SHA extensions where the CPU has them)
# of every blob, already extracted and in the page cache, on nproc cores at once. The blobs are
# dealt largest first, each to the core with the fewest bytes so far, and each core's share is
# one openssl process: as even as one blob per job, without a process start per blob (which
# would flatter airlock). No share is larger than the largest blob, or the bytes over nproc.
verify_openssl_all() {
  local run=$1 t i cores
  cores=$(nproc)
  mkdir -p "$run"
  xargs stat -c '%s %n' <"$BENCH_WORK/src/blobs.txt" | awk -v k="$cores" -v dir="$run" '
    { best = 0; for (i = 1; i < k; i++) if (load[i] < load[best]) best = i
      load[best] += $1; print $2 > (dir "/share." best) }'
  warm_src
  local pids=()
  t=$(now)
  for i in $(seq 0 $((cores - 1))); do
    [ -f "$run/share.$i" ] || continue
    xargs /usr/bin/time -a -o "$run/time.log" -f "par:hash %M %O %U %S" openssl dgst -sha256 \
      <"$run/share.$i" >/dev/null &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  R_TIME=$(elapsed "$t")
  measured "$run/time.log"
  R_EXTRA=0
}

# The same bytes through one openssl process on one core: issue 6's "one core hashing with SHA
# extensions".
verify_openssl_one() {
  local run=$1 t
  mkdir -p "$run"
  warm_src
  t=$(now)
  xargs /usr/bin/time -a -o "$run/time.log" -f "hash %M %O %U %S" openssl dgst -sha256 \
    <"$BENCH_WORK/src/blobs.txt" >/dev/null
  R_TIME=$(elapsed "$t")
  measured "$run/time.log"
  R_EXTRA=0
}

# -------------------------------------------------------------- limits ---------------------
# bench_limits BUNDLE: one sample each, alone, for context: sets L_* (seconds) and L_*_BYTES.
bench_limits() {
  local bundle=$1 dir=$BENCH_WORK/limits t
  mkdir -p "$dir"
  zstd -dcq "$bundle" >"$dir/bundle.tar"
  L_TAR_BYTES=$(stat -c %s "$dir/bundle.tar")
  cat "$dir/bundle.tar" >/dev/null # warm the page cache

  t=$(now); sha256sum "$dir/bundle.tar" >/dev/null; L_SHA256SUM=$(elapsed "$t")
  t=$(now); zstd -dcq "$bundle" >/dev/null; L_ZSTD_D=$(elapsed "$t")
  sync
  t=$(now); dd if="$dir/bundle.tar" of="$dir/fsync.out" bs=4M conv=fsync status=none; L_FSYNC=$(elapsed "$t")
  rm -f "$dir/fsync.out"

  # Raw HTTP: the largest blob up (POST, then a single PUT with ?digest=), then down again.
  bench_start_registry limits
  local port=$REG_PORT pid=$REG_PID big hex loc
  big=$(head -1 "$BENCH_WORK/src/blobs.txt")
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
  rm -rf "$dir"
}

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / s / 1e6; else print "inf" }'; }
# ratio A B: A / B unrounded (six decimals), for verdicts; round only to show it.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.6f", a / b; else print "n/a" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
