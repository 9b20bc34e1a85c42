//! A rehearsal of today's internet for Rancher 1.6's images, all on 127.0.0.1 (issue 12).
//!
//! - **docker.io**: an HTTP front over a real registry. Every manifest answer carries Docker
//!   Hub's `ratelimit-limit` / `ratelimit-remaining` headers; a manifest `GET` counts against
//!   the allowance and a `HEAD` does not; past the allowance the front answers 429
//!   `TOOMANYREQUESTS` as Docker Hub does (docker/docs `manuals/docker-hub/usage/pulls.md`).
//! - **gcr.io**: serves nothing any more: 404 for `google_containers`; for the deleted
//!   `kubernetes-helm` project a Bearer challenge whose token server answers 403 `DENIED`
//!   (helm/helm#10120, #10164: Docker's `Head …: denied: Project kubernetes-helm has been
//!   deleted.` is the token server's answer to an anonymous pull).
//! - **registry.k8s.io**: a front that answers `/v2/` itself and `307`-redirects manifests and
//!   blobs to a second host (a real registry with schema 1 enabled) that wants an anonymous
//!   Bearer token of its own, as registry.k8s.io sends clients to Artifact Registry.
//! - **ghcr.io**: a real registry with anonymous Bearer tokens, holding `helm/tiller`.
//!
//! The images are [`airlock::fixtures::rancher_1_6_14_today`] (pause a signed schema 1
//! manifest, busybox an OCI index with attestation manifests) plus Docker images for the rest
//! of 1.6.14's 24, each at the place [`airlock::fixtures::today_path`] says.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use airlock::fixtures::{self, Fixture};

use super::fake::{FakeServer, Recorded, Reply};
use super::http;
use super::{Registry, RegistryBuilder, TokenPolicy};

/// Docker Hub's window, as its headers give it.
const WINDOW: &str = "w=21600";

/// Today's places, running.
pub struct Today {
    /// The registry behind the docker.io front.
    pub docker_backend: Registry,
    /// docker.io (rate-limited front).
    pub docker: FakeServer,
    docker_gets: Arc<AtomicU64>,
    docker_limit: Arc<AtomicU64>,
    /// False: `HEAD` answers carry no rate-limit headers (as from a cache in front of Hub).
    docker_head_limits: Arc<AtomicBool>,
    /// gcr.io: nothing there.
    pub gcr: FakeServer,
    /// The host registry.k8s.io redirects to.
    pub k8s_backend: Registry,
    /// registry.k8s.io (the redirecting front).
    pub k8s: FakeServer,
    /// ghcr.io.
    pub ghcr: Registry,
    /// Every image, by the name Rancher asks for.
    pub fixtures: Arc<Vec<Fixture>>,
    dir: tempfile::TempDir,
}

/// A front that forwards every request to `backend` (plain http) and passes the answer back.
pub fn forward(backend: &str, r: &Recorded) -> Reply {
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for k in ["accept", "authorization", "content-type"] {
        if let Some(v) = r.header(k) {
            headers.push((k, v));
        }
    }
    let url = format!("{backend}{}", r.path);
    let resp = match http::request(&r.method, &url, &headers, &r.body) {
        Ok(resp) => resp,
        Err(e) => return Reply::new(502).body(format!("front: {e}")),
    };
    let mut reply = Reply::new(resp.status);
    for (k, v) in &resp.headers {
        let lk = k.to_ascii_lowercase();
        let keep = matches!(
            lk.as_str(),
            "content-type"
                | "docker-content-digest"
                | "docker-distribution-api-version"
                | "www-authenticate"
                | "location"
        ) || (lk == "content-length" && r.method == "HEAD");
        if keep {
            reply = reply.header(k, v);
        }
    }
    reply.body(resp.body)
}

impl Today {
    /// Starts every place and seeds it. `allowance` is docker.io's pull allowance (manifest
    /// `GET`s) for the whole run; `names` the images of the rehearsal beyond the 17 of
    /// [`airlock::fixtures::rancher_1_6_14_today`] (Docker schema 2 images on docker.io).
    pub fn start(seed: u64, scale: f64, names: &[&str], allowance: u64) -> Today {
        // Generated once per test binary (a second or so in a debug build), then shared.
        type Key = (u64, u64, Vec<String>);
        static SETS: std::sync::Mutex<Vec<(Key, Arc<Vec<Fixture>>)>> =
            std::sync::Mutex::new(Vec::new());
        let key = (
            seed,
            scale.to_bits(),
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        );
        let fixtures = {
            let mut sets = SETS.lock().unwrap_or_else(|e| e.into_inner());
            match sets.iter().find(|(k, _)| *k == key) {
                Some((_, f)) => f.clone(),
                None => {
                    let set = fixtures::rancher_1_6_14_today(seed, scale);
                    let f = Arc::new(fixtures::with_extra(set, names, seed, scale));
                    sets.push((key, f.clone()));
                    f
                }
            }
        };

        let anonymous = |user: &str| TokenPolicy {
            anonymous_pull: true,
            ..TokenPolicy::new(user, "rehearsal-pw")
        };
        // The three registries start in parallel: each waits for its port to answer.
        let (docker_backend, k8s_backend, ghcr) = std::thread::scope(|s| {
            let d = s.spawn(Registry::start);
            let k = s.spawn(|| {
                RegistryBuilder::new()
                    .token_auth(anonymous("k8s"))
                    .schema1()
                    .start()
            });
            let g = s.spawn(|| RegistryBuilder::new().token_auth(anonymous("ghcr")).start());
            (d.join().unwrap(), k.join().unwrap(), g.join().unwrap())
        });
        let docker_gets = Arc::new(AtomicU64::new(0));
        let docker_limit = Arc::new(AtomicU64::new(allowance));
        let docker_head_limits = Arc::new(AtomicBool::new(true));
        let docker = {
            let (url, gets, limit, head_limits) = (
                docker_backend.url(),
                docker_gets.clone(),
                docker_limit.clone(),
                docker_head_limits.clone(),
            );
            FakeServer::start(move |r| {
                if !r.path.contains("/manifests/") {
                    return forward(&url, r);
                }
                let limit = limit.load(Ordering::SeqCst);
                let used = if r.method == "GET" {
                    gets.fetch_add(1, Ordering::SeqCst) + 1
                } else {
                    gets.load(Ordering::SeqCst)
                };
                let limit_h = format!("{limit};{WINDOW}");
                if used > limit {
                    return Reply::new(429)
                        .header("ratelimit-limit", &limit_h)
                        .header("ratelimit-remaining", &format!("0;{WINDOW}"))
                        .header("Content-Type", "application/json")
                        .body(
                            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#,
                        );
                }
                if r.method == "HEAD" && !head_limits.load(Ordering::SeqCst) {
                    return forward(&url, r);
                }
                forward(&url, r)
                    .header("ratelimit-limit", &limit_h)
                    .header("ratelimit-remaining", &format!("{};{WINDOW}", limit - used))
                    .header("docker-ratelimit-source", "127.0.0.1")
            })
        };

        let gcr = FakeServer::start(|r| {
            if r.path == "/v2/" {
                return Reply::new(200);
            }
            let helm = r.path.starts_with("/v2/kubernetes-helm/")
                || (r.path.starts_with("/v2/token") && r.path.contains("kubernetes-helm"));
            if helm && !r.path.starts_with("/v2/token") {
                // Anonymous pulls go through gcr.io's token server, which is the one that
                // refuses the deleted project (Docker says `Head …/manifests/v2.16.9: denied:
                // Project kubernetes-helm has been deleted.`, the token answer's error).
                let host = r.header("host").unwrap_or("127.0.0.1");
                return Reply::new(401)
                    .header(
                        "WWW-Authenticate",
                        &format!(
                            r#"Bearer realm="http://{host}/v2/token",service="gcr.io",scope="repository:kubernetes-helm/tiller:pull""#
                        ),
                    )
                    .header("Content-Type", "application/json")
                    .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#);
            }
            let (code, status, message) = if helm {
                ("DENIED", 403, "Project kubernetes-helm has been deleted.")
            } else {
                ("NAME_UNKNOWN", 404, "Repository not found.")
            };
            Reply::new(status)
                .header("Content-Type", "application/json")
                .body(format!(
                    r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#
                ))
        });

        let k8s = {
            let backend = k8s_backend.url();
            FakeServer::start(move |r| {
                if r.path == "/v2/" {
                    return Reply::new(200)
                        .header("Docker-Distribution-API-Version", "registry/2.0");
                }
                if r.path.contains("/manifests/") || r.path.contains("/blobs/") {
                    return Reply::new(307).header("Location", &format!("{backend}{}", r.path));
                }
                Reply::new(404)
            })
        };
        let today = Today {
            docker_backend,
            docker,
            docker_gets,
            docker_limit,
            docker_head_limits,
            gcr,
            k8s_backend,
            k8s,
            ghcr,
            fixtures,
            dir: tempfile::tempdir().unwrap(),
        };
        today.seed();
        today
    }

    /// Pushes every image to its place today (straight to the backends).
    fn seed(&self) {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        use rayon::prelude::*;
        self.fixtures.par_iter().for_each(|f| {
            let (host, repo, tag) = fixtures::today_path(&f.name);
            let (url, token) = match host.as_str() {
                "docker.io" => (self.docker_backend.url(), None),
                "registry.k8s.io" => (self.k8s_backend.url(), self.k8s_backend.token_server()),
                "ghcr.io" => (self.ghcr.url(), self.ghcr.token_server()),
                other => panic!("{}: no stand-in for {other}", f.name),
            };
            let auth = token.map(|t| {
                http::bearer(&t.issue("seeder", &[(repo.as_str(), &["pull", "push"][..])]))
            });
            fixtures::push_raw_with(&agent, &url, auth.as_deref(), &repo, &tag, &f.artifact)
                .unwrap_or_else(|e| panic!("seeding {} into {url}/{repo}: {e:#}", f.name));
        });
    }

    /// `--mirror` rules that send each of today's hosts to its stand-in.
    pub fn mirror_args(&self) -> Vec<String> {
        [
            ("docker.io", self.docker.url()),
            ("gcr.io", self.gcr.url()),
            ("registry.k8s.io", self.k8s.url()),
            ("ghcr.io", self.ghcr.url()),
        ]
        .into_iter()
        .flat_map(|(h, u)| ["--mirror".to_string(), format!("{h}={u}")])
        .collect()
    }

    /// A pin table (`--pins`) of the fixtures' own digests for the references airlock's
    /// built-in table pins (the fixtures are not the upstream images).
    pub fn pins_file(&self) -> PathBuf {
        let p = self.dir.path().join("pins.txt");
        std::fs::write(&p, fixtures::pin_table(&self.fixtures, true)).unwrap();
        p
    }

    /// The fixture named `name`.
    pub fn fixture(&self, name: &str) -> &Fixture {
        self.fixtures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
    }

    /// docker.io manifest `GET`s so far (what Docker Hub counts).
    pub fn docker_pulls(&self) -> u64 {
        self.docker_gets.load(Ordering::SeqCst)
    }

    /// Sets docker.io's allowance and forgets the pulls so far (a new window).
    pub fn set_docker_allowance(&self, allowance: u64) {
        self.docker_limit.store(allowance, Ordering::SeqCst);
        self.docker_gets.store(0, Ordering::SeqCst);
    }

    /// Whether docker.io's `HEAD` answers say how many pulls remain (they do by default).
    pub fn set_docker_head_limits(&self, on: bool) {
        self.docker_head_limits.store(on, Ordering::SeqCst);
    }

    /// Requests docker.io saw, by kind: (manifest HEADs, manifest GETs, blob GETs).
    pub fn docker_requests(&self) -> (usize, usize, usize) {
        let reqs = self.docker.requests();
        let count = |m: &str, part: &str| {
            reqs.iter()
                .filter(|r| r.method == m && r.path.contains(part))
                .count()
        };
        (
            count("HEAD", "/manifests/"),
            count("GET", "/manifests/"),
            count("GET", "/blobs/"),
        )
    }

    /// Requests each stand-in saw, for diagnostics.
    pub fn traffic(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("docker.io", self.docker.requests().len()),
            ("gcr.io", self.gcr.requests().len()),
            ("registry.k8s.io", self.k8s.requests().len()),
        ])
    }
}

/// What a Docker 1.12–17.03 engine got from a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// `Docker-Content-Digest` of what the tag answered (a list's, for a list).
    pub digest: String,
    pub media_type: String,
    /// The linux/amd64 image manifest's digest when the tag is a list.
    pub image_digest: Option<String>,
    /// The config (schema 2) and the layer digests, bottom first.
    pub config: serde_json::Value,
    pub layers: Vec<String>,
}

/// Pulls `repo:tag` from a plain-http registry as Docker 17.03 does (moby v17.03
/// `distribution/pull_v2.go`): only Docker types in `Accept`; a manifest list resolved to its
/// linux/amd64 entry; a schema 2 manifest's config must be Docker-typed (else "target is
/// unknown") and its layers Docker-typed; every blob is verified, and each layer's
/// decompressed sha256 must equal the config's `rootfs.diff_ids` entry (Docker checks it when
/// it registers the layers). A schema 1 manifest is pulled by its layers. Written against the
/// harness's own HTTP client, not airlock's.
pub fn docker_17_03_pull(registry: &str, repo: &str, tag: &str) -> Result<Pulled, String> {
    use airlock::media_type as mt;
    use std::io::Read;
    let accept = mt::DOCKER_17_03_ACCEPT;
    let get = |path: &str| -> Result<http::Response, String> {
        let url = format!("{registry}{path}");
        let r = http::request("GET", &url, &[("Accept", accept)], &[])
            .map_err(|e| format!("GET {url}: {e}"))?;
        if r.status != 200 {
            return Err(format!("GET {url}: HTTP {}: {}", r.status, r.text()));
        }
        Ok(r)
    };
    let blob = |d: &str| -> Result<Vec<u8>, String> {
        let r = get(&format!("/v2/{repo}/blobs/{d}"))?;
        let actual = airlock::digest::Digest::of(&r.body).to_string();
        if actual != d {
            return Err(format!("{repo}: blob {d} hashes to {actual}"));
        }
        Ok(r.body)
    };
    let top = get(&format!("/v2/{repo}/manifests/{tag}"))?;
    let content_type = top.header("Content-Type").unwrap_or("").to_string();
    let digest = top
        .header("Docker-Content-Digest")
        .ok_or("no Docker-Content-Digest")?
        .to_string();
    let doc: serde_json::Value =
        serde_json::from_slice(&top.body).map_err(|e| format!("{repo}:{tag}: {e}"))?;
    let (manifest, image_digest, image_type) = match mt::essence(&content_type) {
        mt::DOCKER_LIST => {
            let entry = doc["manifests"]
                .as_array()
                .and_then(|m| {
                    m.iter().find(|e| {
                        e["platform"]["os"] == "linux" && e["platform"]["architecture"] == "amd64"
                    })
                })
                .ok_or(format!("{repo}:{tag}: no linux/amd64 entry in the list"))?;
            let d = entry["digest"].as_str().unwrap_or("").to_string();
            let m = get(&format!("/v2/{repo}/manifests/{d}"))?;
            let t = m.header("Content-Type").unwrap_or("").to_string();
            let v: serde_json::Value =
                serde_json::from_slice(&m.body).map_err(|e| e.to_string())?;
            (v, Some(d), t)
        }
        mt::DOCKER_MANIFEST | mt::DOCKER_SCHEMA1_SIGNED | mt::DOCKER_SCHEMA1 => {
            (doc, None, content_type.clone())
        }
        other => return Err(format!("{repo}:{tag}: Docker 17.03 cannot pull {other:?}")),
    };
    match mt::essence(&image_type) {
        mt::DOCKER_SCHEMA1_SIGNED | mt::DOCKER_SCHEMA1 => {
            let mut layers = Vec::new();
            for l in manifest["fsLayers"]
                .as_array()
                .ok_or("no fsLayers")?
                .iter()
                .rev()
            {
                let d = l["blobSum"].as_str().unwrap_or("").to_string();
                blob(&d)?;
                layers.push(d);
            }
            Ok(Pulled {
                digest,
                media_type: content_type,
                image_digest,
                config: serde_json::Value::Null,
                layers,
            })
        }
        mt::DOCKER_MANIFEST => {
            let config_type = manifest["config"]["mediaType"].as_str().unwrap_or("");
            if config_type != mt::DOCKER_CONFIG {
                return Err(format!(
                    "{repo}:{tag}: config type {config_type:?}: target is unknown"
                ));
            }
            let config_d = manifest["config"]["digest"].as_str().unwrap_or("");
            let config: serde_json::Value =
                serde_json::from_slice(&blob(config_d)?).map_err(|e| e.to_string())?;
            let diff_ids = config["rootfs"]["diff_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let descs = manifest["layers"].as_array().cloned().unwrap_or_default();
            if descs.len() != diff_ids.len() {
                return Err(format!(
                    "{repo}:{tag}: {} layers but {} diff_ids",
                    descs.len(),
                    diff_ids.len()
                ));
            }
            let mut layers = Vec::new();
            for (l, diff) in descs.iter().zip(&diff_ids) {
                let t = l["mediaType"].as_str().unwrap_or("");
                if t != mt::DOCKER_LAYER_GZIP {
                    return Err(format!("{repo}:{tag}: layer type {t:?}"));
                }
                let d = l["digest"].as_str().unwrap_or("").to_string();
                let gz = blob(&d)?;
                let mut tar = Vec::new();
                flate2::read::MultiGzDecoder::new(&gz[..])
                    .read_to_end(&mut tar)
                    .map_err(|e| format!("{repo}:{tag}: layer {d}: {e}"))?;
                let got = airlock::digest::Digest::of(&tar).to_string();
                if Some(got.as_str()) != diff.as_str() {
                    return Err(format!(
                        "{repo}:{tag}: layer {d} decompresses to {got}, the config says {diff}"
                    ));
                }
                layers.push(d);
            }
            Ok(Pulled {
                digest,
                media_type: content_type,
                image_digest,
                config,
                layers,
            })
        }
        other => Err(format!("{repo}:{tag}: Docker 17.03 cannot pull {other:?}")),
    }
}
