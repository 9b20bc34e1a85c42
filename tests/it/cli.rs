//! The command line as an interface (issue 15): exit codes, help, completions and the man
//! page, the JSON documents, and files pack must not replace.
//!
//! Exit codes 3 (partial success) are checked where a partial success happens:
//! `pack::keep_going_writes_what_it_could_and_still_fails` and
//! `unpack::a_corrupted_layer_is_named_by_verify_and_only_its_image_is_not_pushed`; 130 and
//! 143 in `interrupt`.

use crate::support::*;

#[test]
fn r15_exit_0_when_everything_was_done() {
    let o = airlock(&["list", "--version", "1.6.14"]);
    assert_exit(&o, 0);
}

#[test]
fn r15_exit_1_when_the_work_failed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.tar.zst");
    let o = airlock(&["verify", missing.to_str().unwrap()]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("missing.tar.zst"), "{}", stderr(&o));
}

/// Every argument error exits 2, whether clap or airlock finds it, and says which flag.
#[test]
fn r15_exit_2_for_every_argument_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["pack", "--version", "1.6.14", "-o", out, "--bogus"],
            "--bogus",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--mirror",
                "docker.io",
            ],
            "--mirror",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--platform",
                "linux",
            ],
            "--platform",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--relocate",
                "nothing",
            ],
            "--relocate",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--only",
                "everything",
            ],
            "--only",
        ),
        (
            &["pack", "--version", "1.6.14", "-o", out, "--split", "3X"],
            "--split",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--username",
                "u",
                "--password-stdin",
            ],
            "--login",
        ),
        (&["pack", "-o", out], "--version"),
        (&["list", "--version", "9.9.9"], "9.9.9"),
        (
            &["list", "--version", "1.6.14", "--k8s-template", "v0"],
            "v0",
        ),
        (
            &["unpack", "b.tar.zst", "--registry", "reg/path"],
            "--prefix",
        ),
    ];
    for (args, names) in cases {
        let o = airlock(args);
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert!(e.contains(names), "{args:?}: the error names {names}: {e}");
        assert!(e.contains("--help"), "{args:?}: points to --help: {e}");
        assert!(!dir.path().join("b.tar.zst").exists());
    }
}

#[test]
fn r15_exit_70_for_a_bug() {
    let o = airlock_with(
        &["list", "--versions"],
        None,
        &[("AIRLOCK_TEST_PANIC", "1")],
    );
    assert_eq!(o.status.code(), Some(70), "{}", stderr(&o));
    assert!(stderr(&o).contains("internal error"), "{}", stderr(&o));
}

#[test]
fn r15_help_lists_the_exit_codes() {
    let long = stdout(&airlock(&["--help"]));
    for code in ["0 ", "1 ", "2 ", "3 ", "70 ", "130 ", "143 "] {
        assert!(
            long.lines()
                .any(|l| l.trim_start().starts_with(code) || l.contains(&format!(" {code}"))),
            "--help documents exit code {code}:\n{long}"
        );
    }
    assert!(long.contains("partial success"), "{long}");
}

/// `pack -o notes.txt` replaced an operator's text file with a bundle (issue 15).
#[test]
fn r15_pack_never_replaces_a_file_it_did_not_write_without_force() {
    let reg = crate::harness::Registry::start();
    seed(&reg, &[fixture(PAUSE)]);
    let image = format!("{}/google_containers/pause-amd64:3.0", reg.host());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_args = ["--cache", cache.to_str().unwrap(), "--insecure"];
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "meeting notes\n").unwrap();
    let o = pack_images(&[&image], &notes, &cache_args);
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert!(
        e.contains("notes.txt exists and was not written by airlock") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "meeting notes\n");
    assert!(!cache.exists(), "refused before any download");

    // A checksum file beside it that is not one is an operator's file too.
    let out = dir.path().join("b.tar.zst");
    std::fs::write(dir.path().join("b.tar.zst.sha256"), "my notes\n").unwrap();
    let o = pack_images(&[&image], &out, &cache_args);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("b.tar.zst.sha256 exists"),
        "{}",
        stderr(&o)
    );
    // So is a part of a split bundle with no airlock parts manifest beside it.
    std::fs::write(dir.path().join("p.tar.zst.000"), "not a part\n").unwrap();
    let split = dir.path().join("p.tar.zst");
    let o = pack_images(
        &[&image],
        &split,
        &[&cache_args[..], &["--split", "1M"]].concat(),
    );
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("p.tar.zst.000 exists"),
        "{}",
        stderr(&o)
    );

    // --force replaces it.
    let mut forced = cache_args.to_vec();
    forced.push("--force");
    let o = pack_images(&[&image], &notes, &forced);
    assert_exit(&o, 0);
    assert_eq!(manifest_of(&notes).images.len(), 1);
    // And a bundle airlock wrote is replaced without it: a rerun is no accident.
    let o = pack_images(&[&image], &notes, &cache_args);
    assert_exit(&o, 0);
}

/// `-o nodir/sub/b.tar.zst` said "measuring the free space of nodir/sub / No such file or
/// directory" (issue 15).
#[test]
fn r15_a_missing_output_directory_is_named_with_the_mkdir_that_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("nodir/sub");
    let out = sub.join("b.tar.zst");
    let o = airlock(&["pack", "--version", "1.6.14", "-o", out.to_str().unwrap()]);
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "the output directory {} does not exist",
            sub.display()
        )) && e.contains(&format!("mkdir -p {}", sub.display())),
        "{e}"
    );
}

/// The key paths docs/json.md documents for `document` (after its `<!-- document: NAME -->`
/// marker), each with whether it is always there; `common` adds the keys of every document.
fn documented(document: &str, common: bool) -> std::collections::BTreeMap<String, bool> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md"))
        .expect("docs/json.md");
    let mut keys = std::collections::BTreeMap::new();
    let mut names = vec![document];
    if common {
        names.push("common");
    }
    for name in names {
        let marker = format!("<!-- document: {name} -->");
        let start = text
            .find(&marker)
            .unwrap_or_else(|| panic!("docs/json.md has no {marker}"));
        for line in text[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with('|'))
        {
            let Some(key) = line.strip_prefix("| `").and_then(|l| l.split('`').next()) else {
                continue;
            };
            keys.insert(key.to_string(), !line.contains("| (optional)"));
        }
    }
    assert!(
        !keys.is_empty(),
        "docs/json.md documents no key of {document}"
    );
    keys
}

/// The key paths of `v` (`a`, `a.b`, `a[].b`), looking inside a value only where docs/json.md
/// documents keys below it.
fn key_paths(
    v: &serde_json::Value,
    prefix: &str,
    docs: &std::collections::BTreeMap<String, bool>,
    out: &mut std::collections::BTreeSet<String>,
) {
    let below = |p: &str| {
        docs.keys()
            .any(|k| k.starts_with(&format!("{p}.")) || k.starts_with(&format!("{p}[].")))
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                if below(&p) {
                    key_paths(child, &p, docs, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for i in items {
                key_paths(i, &format!("{prefix}[]"), docs, out);
            }
        }
        _ => {}
    }
}

/// Parses one command's output and holds it against docs/json.md: every key it prints is
/// documented, every key documented as always there is there (where its parent is).
fn check_document(document: &str, o: &std::process::Output, common: bool) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{document}: not one JSON document ({e}):\n{}{}",
            stdout(o),
            stderr(o)
        )
    });
    assert!(v.is_object(), "{document}: one object\n{v}");
    let docs = documented(document, common);
    let mut got = std::collections::BTreeSet::new();
    key_paths(&v, "", &docs, &mut got);
    for p in &got {
        let bare = p.replace("[]", "");
        assert!(
            docs.contains_key(p),
            "{document}: key {p} is not in docs/json.md\n{v}"
        );
        assert!(!bare.contains('_'), "{document}: key {p} is not camelCase");
    }
    for (p, required) in &docs {
        let parent = p.rsplit_once('.').map(|(a, _)| a.trim_end_matches("[]"));
        let parent_there = match parent {
            None => true,
            Some(parent) => got.iter().any(|g| {
                g.starts_with(&format!("{parent}.")) || g.starts_with(&format!("{parent}[]."))
            }),
        };
        if *required && parent_there {
            assert!(
                got.contains(p),
                "{document}: documented key {p} is missing\n{v}"
            );
        }
    }
    if common {
        assert_eq!(v["schemaVersion"], 1, "{document}");
    }
    v
}

/// `airlock list --version 1.6.14 --with-server FLAG VALUE`.
fn list_1_6_14_with_server(flag: &str, value: &str) -> std::process::Output {
    airlock(&["list", "--version", "1.6.14", "--with-server", flag, value])
}

/// Every `--format json` document (and the inventory file) parses, is one object and carries
/// exactly the keys docs/json.md lists (issue 15).
#[test]
fn r15_every_json_document_has_the_documented_keys() {
    let o = list_1_6_14_with_server("--format", "json");
    assert_exit(&o, 0);
    let v = check_document("list", &o, true);
    assert_eq!(
        (v["command"].as_str(), v["ok"].as_bool()),
        (Some("list"), Some(true))
    );
    assert_eq!(v["release"], "1.6.14");
    // `--output json` is the same document.
    let again = list_1_6_14_with_server("--output", "json");
    assert_eq!(again.stdout, o.stdout);
    let o = airlock(&["list", "--versions", "--format", "json"]);
    assert_exit(&o, 0);
    let v = check_document("list-versions", &o, true);
    assert!(v["releases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["version"] == "1.6.14"));

    let reg = crate::harness::Registry::start();
    seed(&reg, &[fixture(PAUSE), fixture(BUSYBOX)]);
    let images = [
        format!("{}/google_containers/pause-amd64:3.0", reg.host()),
        format!("{}/library/busybox:latest", reg.host()),
    ];
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar.zst");
    let b = bundle.to_str().unwrap();
    let cache = dir.path().join("cache");
    let fixture_args = fixture_pack_args();
    let mut pack_args = vec![
        "--cache",
        cache.to_str().unwrap(),
        "--insecure",
        "--format",
        "json",
    ];
    pack_args.extend(fixture_args.iter().map(String::as_str));
    let o = pack_images(&images, &bundle, &pack_args);
    assert_exit(&o, 0);
    let v = check_document("pack", &o, true);
    assert_eq!(v["bundle"], b);
    assert_eq!(v["images"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["size"].as_u64(),
        Some(std::fs::metadata(&bundle).unwrap().len())
    );
    let sidecar = std::fs::read_to_string(dir.path().join("b.tar.zst.sha256")).unwrap();
    assert!(
        sidecar.starts_with(v["sha256"].as_str().unwrap()),
        "{sidecar}"
    );
    assert!(!dir.path().join("json").exists(), "no file named json");

    let o = airlock(&["inspect", b, "--format", "json"]);
    assert_exit(&o, 0);
    let v = check_document("inspect", &o, true);
    assert_eq!(v["bundleJson"]["images"].as_array().unwrap().len(), 2);

    let o = airlock(&["verify", b, "--format", "json"]);
    assert_exit(&o, 0);
    let v = check_document("verify", &o, true);
    assert_eq!(
        (v["ok"].as_bool(), v["bundle"].as_str()),
        (Some(true), Some(b))
    );

    let target = crate::harness::Registry::start();
    let url = target.url();
    let o = airlock(&[
        "unpack",
        b,
        "--registry",
        &url,
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_exit(&o, 0);
    let v = check_document("unpack-dry-run", &o, true);
    assert_eq!(v["dryRun"], true);
    let o = airlock(&["unpack", b, "--registry", &url, "--format", "json"]);
    assert_exit(&o, 0);
    let v = check_document("unpack", &o, true);
    assert_eq!(v["images"][0]["status"], "pushed");

    let o = airlock(&["inventory", "--registry", &url]);
    assert_exit(&o, 0);
    check_document("inventory", &o, false);

    // A failure is a document too, beside the error on standard error.
    let missing = dir.path().join("missing.tar.zst");
    let o = airlock(&["verify", missing.to_str().unwrap(), "--format", "json"]);
    assert_exit(&o, 1);
    let v = check_document("error", &o, true);
    assert_eq!(v["ok"], false);
    assert!(
        v["error"].as_str().unwrap().contains("missing.tar.zst"),
        "{v}"
    );

    // `pack --output json` wrote a bundle named `json`: now a usage error that says why.
    let o = airlock(&["pack", "--version", "1.6.14", "--output", "json"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--format json"), "{}", stderr(&o));
}

/// `list --format refs` prints each image once, one a line, and `pack --images` reads it.
#[test]
fn r15_list_refs_is_one_unique_reference_a_line() {
    let o = list_1_6_14_with_server("--format", "refs");
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let unique: std::collections::BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(unique.len(), lines.len(), "each reference once:\n{out}");
    for l in &lines {
        airlock::reference::Reference::parse(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(!l.contains(' ') && !l.starts_with('#'), "{l}");
    }
    // The same images as the JSON listing, both templates and the server group.
    let o = list_1_6_14_with_server("--format", "json");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut from_json: std::collections::BTreeSet<String> = v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["images"].as_array().unwrap())
        .chain(v["server"]["images"].as_array().unwrap())
        .map(|i| i["reference"].as_str().unwrap().to_string())
        .collect();
    let mut from_refs: std::collections::BTreeSet<String> =
        unique.iter().map(|s| s.to_string()).collect();
    assert_eq!(from_refs.len(), from_json.len());
    from_refs.retain(|r| !from_json.remove(r));
    assert!(from_refs.is_empty() && from_json.is_empty());
    assert!(lines.contains(&"docker.io/rancher/server:v1.6.14"), "{out}");
    // What pack reads back from it.
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("refs.txt");
    std::fs::write(&list, &out).unwrap();
    let read = airlock::catalog::read_image_list(&list).unwrap();
    assert_eq!(read.len(), lines.len());
}

/// The commands every completion script and the help must know.
const COMMANDS: [&str; 10] = [
    "list",
    "pack",
    "inspect",
    "verify",
    "unpack",
    "inventory",
    "login",
    "logout",
    "completions",
    "man",
];

/// `airlock completions SHELL` prints a script that offers every command and their flags.
#[test]
fn r15_completions_offer_every_command() {
    let o = airlock(&["completions", "bash"]);
    assert_exit(&o, 0);
    let bash = stdout(&o);
    assert!(bash.contains("complete -F _airlock"), "{bash}");
    for c in COMMANDS {
        assert!(
            bash.contains(&format!("cmd=\"airlock__subcmd__{c}\"")),
            "bash lacks {c}"
        );
    }
    assert!(bash.contains("--split") && bash.contains("--registry"));
    for (shell, marker) in [
        ("zsh", "#compdef airlock"),
        ("fish", "complete -c airlock"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let o = airlock(&["completions", shell]);
        assert_exit(&o, 0);
        let script = stdout(&o);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("unpack"), "{shell}");
    }
    assert_exit(&airlock(&["completions", "tcsh"]), 2);
}

/// `airlock man` prints airlock(1) as roff, `airlock man pack` airlock-pack(1) with its flags
/// and examples, and `--dir` writes every page.
#[test]
fn r15_man_prints_roff_pages() {
    let o = airlock(&["man"]);
    assert_exit(&o, 0);
    let page = stdout(&o);
    let th = page
        .lines()
        .find(|l| l.starts_with(".TH "))
        .unwrap_or_else(|| panic!("no .TH line:\n{page}"));
    assert!(th.starts_with(".TH airlock 1 "), "{th}");
    assert!(page.lines().all(|l| !l.starts_with(".TH ") || l == th));
    assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"));
    assert!(
        page.contains("airlock\\-pack(1)"),
        "links to the command pages"
    );

    let o = airlock(&["man", "pack"]);
    assert_exit(&o, 0);
    let page = stdout(&o);
    assert!(page.contains(".TH airlock-pack 1 "), "{page}");
    assert!(page.contains("\\-\\-split") && page.contains("Examples:"));

    let o = airlock(&["man", "bogus"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("unpack"), "{}", stderr(&o));

    let dir = tempfile::tempdir().unwrap();
    assert_exit(&airlock(&["man", "--dir", dir.path().to_str().unwrap()]), 0);
    for c in COMMANDS {
        let f = dir.path().join(format!("airlock-{c}.1"));
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        assert!(text.contains(&format!(".TH airlock-{c} 1 ")), "{f:?}");
    }
    assert!(dir.path().join("airlock.1").exists());
}

/// Every command's `--help` ends with examples of itself; `-h` is the short help, without them.
#[test]
fn r15_help_ends_with_examples_and_dash_h_stays_short() {
    for c in COMMANDS {
        let short = airlock(&[c, "-h"]);
        let long = airlock(&[c, "--help"]);
        assert_exit(&short, 0);
        assert_exit(&long, 0);
        let (short, long) = (stdout(&short), stdout(&long));
        assert!(
            short.lines().count() < long.lines().count(),
            "{c}: -h is not shorter than --help"
        );
        assert!(!short.contains("Examples:"), "{c} -h:\n{short}");
        let examples = long
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{c} --help has no examples:\n{long}"))
            .1;
        let runs: Vec<&str> = examples
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && l.contains("airlock "))
            .collect();
        assert!(
            (2..=3).contains(&runs.len())
                && runs.iter().any(|l| l.contains(&format!("airlock {c} "))),
            "{c}: {} examples:\n{examples}",
            runs.len()
        );
    }
}

/// `airlock list ... | head -1`: a reader that goes away ends the run quietly with exit 0,
/// not with a panic (exit 70).
#[test]
fn r15_a_closed_pipe_on_standard_output_is_not_a_bug() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["list", "--version", "1.6.14", "--format", "refs"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reading end closes before airlock has started, let alone written.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 0);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}
