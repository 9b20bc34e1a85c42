#!/usr/bin/env python3
"""Prints the README's performance tables from the JSON scripts/bench.sh writes.

    scripts/bench-readme.py [target/bench/bench-1.json] [--scaling target/bench/bench-scaling.json]
    scripts/bench-readme.py --write README.md [...]

With --write, replaces what stands between `<!-- bench:begin -->` and `<!-- bench:end -->`
(and `<!-- bench-scaling:begin -->` / `<!-- bench-scaling:end -->`) in the README, so every
figure there comes from the named run. Ratios are shown to four places and judged by
scripts/bench.sh on their unrounded values; this script only formats.
"""

import argparse
import json
import re
import sys

MIB = 1048576


def secs(v):
    return f"{v:.2f} s" if isinstance(v, (int, float)) else "–"


def span(r):
    """Median, and the range over runs when there are several."""
    times = [float(t) for t in str(r.get("times_s", "")).split(",") if t]
    if len(times) > 1:
        return f"{secs(r['time_s'])} ({min(times):.2f}–{max(times):.2f})"
    return secs(r.get("time_s"))


def mib(b):
    if not isinstance(b, (int, float)):
        return "–"
    return "0" if b == 0 else f"{b / MIB:.0f} MiB"


def kept(v):
    return f"{v}/17" if isinstance(v, (int, float)) else "–"


def r4(v):
    return f"{v:.4f}" if isinstance(v, (int, float)) else str(v)


def when(m):
    """The run's date and UTC times (runs before `started` was recorded give their end only)."""
    end = m["date"]
    if "started" in m:
        return f"{m['started'][:10]}, {m['started'][11:16]}–{end[11:16]} UTC"
    return f"{end[:10]}, ended {end[11:16]} UTC"


def busy(m):
    """A warning when other work was running as the run started, else an empty string."""
    load = float(m["loadavg_start"].split()[0])
    if load <= 0.5 * m["nproc"]:
        return ""
    return (
        f"**Other work was running on the machine when this run started** (load average "
        f"{load:g} on {m['nproc']} cores): these are not a quiet machine's figures."
    )


def full(doc):
    m, res, rat = doc["machine"], doc["results"], doc.get("ratios", {})
    s = res["set"]["all"]
    runs = int(s["runs"])
    out = []
    w = out.append
    w(
        f"Run of {when(m)} at commit `{m['commit']}`: "
        f"`scripts/bench.sh --scale {s['scale']} --runs {runs}` on {m['nproc']} cores "
        f"({m['cpu']}, SHA extensions: {m['sha_ni']}), {m['memory']}, kernel {m['kernel']}; "
        f"load average {m['loadavg_start']} at the start, {m['loadavg_end']} at the end. "
        f"{s['images']} images, {s['dedup_bytes'] / MIB:.0f} MiB deduplicated "
        f"({s['summed_bytes'] / MIB:.0f} MiB summed). Times are medians of {runs} runs "
        f"(range in brackets); the last column is the median over rounds of airlock's time "
        f"over this row's in the same round."
    )
    if busy(m):
        w("")
        w(busy(m))
    w("")
    w("| | time | +sync | CPU | peak RSS | extra disk | digests kept | airlock / this |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = [
        ("pack", "airlock", "`airlock pack --no-cache`", None),
        ("pack", "oci", "skopeo to OCI layouts (4 at a time), `tar \\| zstd -T0 --fast`", "pack_over_oci"),
        ("pack", "dir", "skopeo to `dir:` (4 at a time), `tar \\| zstd -T0 --fast`", "pack_over_dir"),
        ("pack", "fsync", "limit: write + fsync of the bundle (`dd conv=fsync`)", "pack_over_write_fsync"),
        ("unpack", "airlock", f"`airlock unpack --jobs {s['airlock_jobs']}`", None),
        ("unpack", "oci", "`zstd -d \\| tar -x`, skopeo copy from OCI (4 at a time)", "unpack_over_oci"),
        ("unpack", "dir", "`zstd -d \\| tar -x`, skopeo copy from `dir:` (4 at a time)", "unpack_over_dir"),
        ("unpack", "ingest", f"limit: registry's raw ingest, curl POST + PUT ({s['airlock_jobs']} at a time)", "unpack_over_raw_ingest"),
        ("verify", "airlock", "`airlock verify`", None),
        ("verify", "tar", "`zstd -d \\| tar -x`, `sha256sum` per blob (nproc at a time)", "verify_over_tar_sha256sum"),
        ("verify", "openssl_all", f"limit: `openssl dgst -sha256` per blob, {m['nproc']} at a time", "verify_over_openssl_all_cores"),
        ("verify", "openssl_one", "limit: `openssl dgst -sha256` of every blob, one core", "verify_over_openssl_one_core"),
    ]
    for sec, tool, name, pair in rows:
        r = res.get(sec, {}).get(tool)
        if not r:
            continue
        ratio = r4(rat[pair]["paired"]) if pair and pair in rat else ("1" if not pair else "–")
        sync = secs(r["sync_after_s"]) if sec != "verify" else "–"
        extra = mib(r["extra_disk_bytes"])
        if (sec, tool) == ("pack", "airlock") and "scratch_largest_sample_bytes" in r:
            # --no-cache's downloads wait beside the output while it runs, then go.
            extra = f"{extra} after, {mib(r['scratch_largest_sample_bytes'])} sampled while running"
        w(
            f"| {name} | {span(r)} | {sync} | {r['cpu_s']:.1f} s | {r['rss_kb'] / 1024:.0f} MiB "
            f"| {extra} | {kept(r['digests_kept'])} | {ratio} |"
        )
    p = res.get("pack", {}).get("airlock", {})
    if "scratch_largest_sample_bytes" in p:
        w("")
        w(
            f"Extra disk is what a run keeps on disk besides its input and output: the peers' "
            f"layouts and extracted trees (at their largest, when the run ends), the bytes "
            f"airlock unpack and verify write. `pack --no-cache` keeps downloads beside "
            f"the output while it runs: in one more, untimed pack, the largest of "
            f"{p['scratch_samples']} samples (one every 20 ms) was "
            f"{p['scratch_largest_sample_bytes'] / MIB:.0f} MiB, against a bound of "
            f"{p['scratch_bound_bytes'] / MIB:.0f} MiB (256 MiB plus the largest blob); "
            f"{p['scratch_left_bytes']} bytes were left after it. A sample is not a bound: the "
            f"directory may hold more between two samples."
        )
    pa = res.get("paths")
    if pa:
        w("")
        w(
            f"The paths users take to their registry (issue 13), in a rotation of their own: "
            f"airlock's bundle, skopeo's `dir:` way beside it on the same path, "
            f"{s['latency_ms_each_way']} ms added each way by `scripts/bench-latency-proxy.py` "
            f"(a 4 MiB window per connection; the kernel here has no netem)."
        )
        w("")
        w("| path | airlock | skopeo `dir:` way | ratio (paired) |")
        w("| --- | --- | --- | --- |")

        def pr(name, a, b=None, ratio=None, note=""):
            ra = pa.get(a)
            rb = pa.get(b) if b else None
            rv = r4(rat[ratio]["paired"]) if ratio in rat else "–"
            w(f"| {name} | {span(ra) if ra else '–'} | {span(rb) if rb else '–'} | {rv}{note} |")

        pr("unpack, `--registry http://H:P`", "unpack_http")
        pr("unpack, `--registry H:P --insecure`", "unpack_insecure", ratio="unpack_insecure_over_http", note=" of http://")
        pr("unpack, https with a private CA (`--ca-file`)", "unpack_tls", "skopeo_tls", "unpack_tls_over_skopeo_tls", " of skopeo")
        w(f"| ... the same over http:// | | | {r4(rat.get('unpack_tls_over_http', {}).get('paired', '–'))} of http:// |")
        pr(f"unpack, {s['latency_ms_each_way']} ms added each way", "unpack_lat", "skopeo_lat", "unpack_lat_over_skopeo_lat", " of skopeo")
        pr("rerun of an unpack, nothing to send, http://", "rerun_http")
        pr("... the same, `H:P --insecure`", "rerun_insecure", ratio="rerun_insecure_over_http", note=" of http://")
        pr("`inventory` x5, http://", "inventory_http")
        pr("... the same, `H:P --insecure`", "inventory_insecure", ratio="inventory_insecure_over_http", note=" of http://")
        pr("`pack --images`, public names, `--mirror http://`", "pack_public")
        pr("`pack --images`, `H:P/...` names, `--insecure`", "pack_hostport", ratio="pack_hostport_insecure_over_public_http", note=" of --mirror")
    lim = res.get("limits")
    if lim:
        tar = lim["tar"]["bytes"]
        up = lim["upload_one_blob"]
        w("")
        w("Limits, one sample each, alone (for context; the verdicts use the rotations above):")
        w("")
        w("| limit | time | throughput |")
        w("| --- | --- | --- |")
        for name, t, b in [
            ("`sha256sum` of the bundle's tar, one core", lim["sha256sum_one_core"]["time_s"], tar),
            ("`zstd -d` of the bundle to /dev/null", lim["zstd_d"]["time_s"], tar),
            ("write + fsync of the tar (`dd conv=fsync`)", lim["write_fsync_alone"]["time_s"], tar),
            (f"curl upload (POST + PUT) of the largest blob, {up['bytes'] / MIB:.0f} MiB", up["time_s"], up["bytes"]),
            ("curl download of that blob", lim["download_one_blob"]["time_s"], up["bytes"]),
        ]:
            w(f"| {name} | {secs(t)} | {b / t / 1e6:.0f} MB/s |" if t else f"| {name} | {secs(t)} | – |")
    tg = doc.get("targets", [])
    if tg:
        w("")
        w("Targets (issues 6 and 13), judged on the unrounded values in the same run:")
        w("")
        w("| issue | target | bound | measured | verdict |")
        w("| --- | --- | --- | --- | --- |")
        for t in tg:
            v = t["value"]
            shown = r4(v) if isinstance(v, float) and not float(v).is_integer() else str(v)
            b = t["bound"]
            bound = str(int(b)) if float(b).is_integer() else f"{b:g}"
            w(f"| {t['issue']} | {t['name']} | {t['op']} {bound} | {shown} | {t['result']} |")
        missed = [t["name"] for t in tg if t["result"] != "met"]
        w("")
        if missed:
            w(f"Not met in this run: {'; '.join(missed)}.")
        else:
            w("Every target was met in this run.")
    return "\n".join(out)


def scaling(doc):
    m, res = doc["machine"], doc["results"]
    out = [
        f"Run of {when(m)} at commit `{m['commit']}`: "
        f"`scripts/bench.sh --scaling`, one run per scale, on {m['nproc']} cores ({m['cpu']}), "
        f"{m['memory']}; load average {m['loadavg_start']} at the start, {m['loadavg_end']} at the end.",
        "",
    ]
    if busy(m):
        out += [busy(m), ""]
    out += [
        "| scale | deduplicated | pack `--no-cache` | its peak RSS | pack, keeping a cache | unpack | unpack peak RSS | extra disk | digests kept |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in sorted(res, key=lambda k: float(k.split("-", 1)[1])):
        r = res[key]["airlock"]
        out.append(
            f"| {key.split('-', 1)[1]} | {r['dedup_bytes'] / MIB:.0f} MiB | {secs(r['pack_s'])} "
            f"| {r['pack_rss_kb'] / 1024:.0f} MiB | {secs(r['pack_cached_s'])} | {secs(r['unpack_s'])} "
            f"| {r['unpack_rss_kb'] / 1024:.0f} MiB | {mib(r['unpack_extra_disk_bytes'])} "
            f"| {kept(r['pack_digests_kept'])}, {kept(r['unpack_digests_kept'])} |"
        )
    return "\n".join(out)


def splice(text, name, body):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    pat = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pat.search(text):
        sys.exit(f"bench-readme: no {begin} ... {end} in the README")
    return pat.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("json", nargs="?", help="bench-<scale>.json of a full run")
    p.add_argument("--scaling", help="bench-scaling.json")
    p.add_argument("--write", metavar="README", help="replace the marked blocks in README")
    a = p.parse_args()
    blocks = {}
    if a.json:
        with open(a.json) as f:
            doc = json.load(f)
        if doc.get("kind") != "full":
            sys.exit(f"bench-readme: {a.json} is not a full run")
        blocks["bench"] = full(doc)
    if a.scaling:
        with open(a.scaling) as f:
            doc = json.load(f)
        blocks["bench-scaling"] = scaling(doc)
    if not blocks:
        p.error("give a full run's JSON, --scaling JSON, or both")
    if a.write:
        with open(a.write) as f:
            text = f.read()
        for name, body in blocks.items():
            text = splice(text, name, body)
        with open(a.write, "w") as f:
            f.write(text)
    else:
        print("\n\n".join(blocks.values()))


if __name__ == "__main__":
    main()
