//! Command-line types (clap derive). No logic lives here: the other files of `cmd/` run the
//! commands, one file each.

use std::path::PathBuf;

use airlock::catalog::Group;
use airlock::manifest::Platform;
use airlock::registry::Endpoint;
use airlock::upstream::Relocation;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Move the container images of a Rancher 1.6 Kubernetes environment into an air-gapped
/// private registry: `pack` on a connected host, carry one file, `unpack` on the other side.
#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 done, 1 failed, 2 usage error, 3 partial success, 70 internal error, 130/143 interrupted (--help says more).",
    after_long_help = super::exit::HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log what airlock does on standard error (-v decisions, -vv every request too).
    ///
    /// -v logs each decision: skipped (the registry has it), mounted, taken from the cache,
    /// uploaded, retried and why. -vv adds each registry request: method, redacted URL,
    /// status, bytes, time. AIRLOCK_LOG takes env_logger's filter syntax instead (e.g.
    /// AIRLOCK_LOG=debug, AIRLOCK_LOG=airlock::registry::transport=debug).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the images a Rancher 1.6 release needs (works offline).
    List(ListArgs),
    /// Fetch every image of a release (or a list) into one bundle file.
    Pack(PackArgs),
    /// Show what a bundle holds, without unpacking it.
    Inspect(InspectArgs),
    /// Check every byte of a bundle, offline.
    Verify(VerifyArgs),
    /// Push every image of a bundle into a private registry, at the paths Rancher expects.
    Unpack(UnpackArgs),
    /// Print what a registry holds (repositories, tags, manifest and blob digests) as JSON,
    /// for `pack --base-registry-inventory` on the connected side.
    Inventory(InventoryArgs),
    /// Print the shell completion script for bash, zsh, fish or powershell.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write every page into a directory.
    Man(ManArgs),
    /// Check a user name and password against a registry and save them in Docker's
    /// config.json (or its credential helper), as `docker login` does.
    Login(LoginArgs),
    /// Remove a registry's credentials from Docker's config.json (and its credential helper).
    Logout(LogoutArgs),
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::LOGIN)]
pub struct LoginArgs {
    /// The registry: HOST[:PORT], http(s)://HOST[:PORT], or docker.io for Docker Hub.
    #[arg(value_name = "REGISTRY", value_parser = RegistryTarget::parse_login)]
    pub registry: RegistryTarget,
    /// User name (asked for on a terminal when not given).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Read the password from standard input (asked for without echo when standard input is
    /// a terminal). Without it, the password is asked for on the terminal.
    #[arg(long = "password-stdin", requires = "username")]
    pub password_stdin: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::LOGOUT)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT], http(s)://HOST[:PORT], or docker.io for Docker Hub.
    #[arg(value_name = "REGISTRY", value_parser = RegistryTarget::parse_login)]
    pub registry: RegistryTarget,
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::COMPLETIONS)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::MAN)]
pub struct ManArgs {
    /// The page of this command (airlock-COMMAND(1)) instead of airlock(1).
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,
    /// Write airlock.1 and airlock-COMMAND.1 for every command into DIR (e.g.
    /// /usr/local/share/man/man1) instead of printing one page.
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::INVENTORY)]
pub struct InventoryArgs {
    /// The registry: host[:port], or http(s)://host[:port].
    #[arg(long, value_name = "REGISTRY", value_parser = RegistryTarget::parse)]
    pub registry: RegistryTarget,
    /// Parallel requests.
    #[arg(long, env = "AIRLOCK_JOBS", default_value_t = 6)]
    pub jobs: usize,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::VERIFY)]
pub struct VerifyArgs {
    /// The bundle file, its first part (bundle.tar.zst.000), the base name of its parts, or `-`
    /// for standard input (read in one sequential pass).
    pub bundle: PathBuf,
    /// Format of what is printed on standard output (--output works too).
    #[arg(long = "format", alias = "output", value_name = "FORMAT", value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub progress: ProgressArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::UNPACK)]
pub struct UnpackArgs {
    /// The bundle file, its first part (bundle.tar.zst.000), the base name of its parts, or `-`
    /// for standard input (read in one sequential pass).
    pub bundle: PathBuf,
    /// The private registry: host[:port], or http(s)://host[:port].
    #[arg(long, value_name = "REGISTRY", value_parser = RegistryTarget::parse)]
    pub registry: RegistryTarget,
    /// Put every image under this path (a Harbor project, e.g. `rancher-mirror/`).
    #[arg(long, value_name = "PATH", default_value = "")]
    pub prefix: String,
    /// Parallel uploads.
    #[arg(long, env = "AIRLOCK_JOBS", default_value_t = 6)]
    pub jobs: usize,
    /// Print where each image would go, push nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Format of the closing report on standard output (--output works too).
    #[arg(long = "format", alias = "output", value_name = "FORMAT", value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub progress: ProgressArgs,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::PACK)]
pub struct PackArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Pack the images listed in FILE (one reference a line; `list` output works too)
    /// instead of a Rancher release.
    #[arg(long = "images", value_name = "FILE", conflicts_with_all = ["version", "k8s_template", "only", "k8saddons", "with_server"])]
    pub images: Option<PathBuf>,
    /// The bundle to write, e.g. bundle.tar.zst.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Platform to keep from multi-platform images (os/arch[/variant]); default linux/amd64.
    /// Repeatable: with several, multi-platform images keep their whole index (a registry
    /// refuses an index with platforms missing), after checking each asked one is in it.
    #[arg(
        long = "platform",
        value_name = "PLATFORM",
        conflicts_with = "all_platforms",
        value_parser = parse_from_str::<Platform>
    )]
    pub platform: Vec<Platform>,
    /// Keep every platform of multi-platform images, and their index, byte for byte.
    #[arg(long = "all-platforms")]
    pub all_platforms: bool,
    /// Parallel downloads.
    #[arg(long, env = "AIRLOCK_JOBS", default_value_t = 8)]
    pub jobs: usize,
    /// Blob cache directory (default: ~/.cache/airlock).
    #[arg(long = "cache", value_name = "DIR", env = "AIRLOCK_CACHE_DIR")]
    pub cache: Option<PathBuf>,
    /// Keep no cache: blobs are downloaded beside the output, at most 256 MiB ahead of the
    /// writer, and each is removed once it is in the bundle, so the bundle is about all that
    /// reaches the disk. An interrupted pack starts its downloads over. With --keep-going,
    /// everything is downloaded before the bundle is written.
    #[arg(long = "no-cache", conflicts_with = "cache")]
    pub no_cache: bool,
    /// Write a bundle of the images that could be fetched even if some failed (exit code
    /// stays non-zero; the failures are recorded in bundle.json).
    #[arg(long = "keep-going")]
    pub keep_going: bool,
    /// What to print on standard output when done: nothing (text, the summary goes to
    /// standard error), or a JSON report of the bundle (docs/json.md).
    #[arg(long = "format", value_name = "FORMAT", value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Replace an existing output file that airlock did not write (without it, pack refuses).
    #[arg(long = "force")]
    pub force: bool,
    /// zstd level (gzip layers do not compress further; higher levels only cost time).
    #[arg(long = "level", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Write parts of at most SIZE bytes (FILE.000, FILE.001, ...) for media with a file size
    /// limit: `fat32` (4 GiB - 1), or a size like 500M, 4G, 1048576.
    #[arg(long = "split", value_name = "SIZE", value_parser = parse_split)]
    pub split: Option<u64>,
    /// Write a delta bundle: leave out every config and layer this earlier bundle carries
    /// (the target registry must hold them already).
    #[arg(
        long = "base",
        value_name = "BUNDLE",
        conflicts_with = "base_registry_inventory"
    )]
    pub base: Option<PathBuf>,
    /// Write a delta bundle: leave out every config and layer listed in this inventory of
    /// the target registry (`airlock inventory --registry reg.local > FILE`).
    #[arg(long = "base-registry-inventory", value_name = "FILE")]
    pub base_registry_inventory: Option<PathBuf>,
    /// Carry every manifest exactly as upstream serves it (OCI manifests and indexes, signed
    /// schema 1), digests unchanged, instead of converting them to Docker schema 2 for the
    /// Docker 1.12–17.03 engines of Rancher 1.6 hosts. For registries and engines that take
    /// OCI (and schema 1: `unpack` checks the target accepts it before pushing anything).
    #[arg(long = "keep-digests")]
    pub keep_digests: bool,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub progress: ProgressArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Where images are fetched from and which upstream digests they must have: the same flags
/// for `list` and `pack`.
#[derive(Debug, Args, Clone, Default)]
pub struct UpstreamArgs {
    /// Fetch images from where this rule sends them before any other place (an internal
    /// proxy cache, say): a prefix of registry/repository rewritten at a path boundary, e.g.
    /// docker.io=harbor.local/dockerhub-proxy. It applies to every place an image is known
    /// at (registry.k8s.io=... covers the gcr.io images). Repeatable.
    #[arg(long = "relocate", value_name = "FROM=TO", value_parser = parse_from_str::<Relocation>)]
    pub relocate: Vec<Relocation>,
    /// Check upstream digests against the pins in FILE (one `REFERENCE DIGEST` a line)
    /// instead of airlock's built-in table (the Kubernetes legacy backfill list of the
    /// gcr.io/google_containers images). bundle.json records the table used.
    #[arg(long = "pins", value_name = "FILE", env = "AIRLOCK_PINS")]
    pub pins: Option<PathBuf>,
}

/// `--insecure-registry`: a host and an optional port, as Docker's `insecure-registries` takes.
fn parse_authority(s: &str) -> Result<String, String> {
    let a = s.trim().trim_end_matches('/').to_ascii_lowercase();
    match a.is_empty() || a.contains(['/', '@', ' ', '?', '#']) {
        true => Err("give HOST or HOST:PORT (no scheme, no path)".into()),
        false => Ok(a),
    }
}

fn parse_split(s: &str) -> Result<u64, String> {
    airlock::parts::parse_size(s).map_err(|e| e.to_string())
}

/// A value clap hands to a type's own parser, so that a wrong one is a usage error (exit 2)
/// that names the flag, like every other.
fn parse_from_str<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

/// `--mirror REGISTRY=URL`: requests for a registry sent to another endpoint.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The registry whose requests go to the mirror (`docker.io` for Docker Hub's aliases).
    pub from: String,
    pub endpoint: Endpoint,
}

impl Mirror {
    pub fn parse(s: &str) -> Result<Mirror, String> {
        let (from, url) = s.split_once('=').ok_or_else(|| {
            "expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5001".to_string()
        })?;
        let endpoint = Endpoint::parse(url).map_err(|e| e.to_string())?;
        let from = match from {
            "index.docker.io" | "registry-1.docker.io" => "docker.io",
            f => f,
        };
        if from.is_empty() {
            return Err("expected REGISTRY=URL: the registry before `=` is empty".into());
        }
        Ok(Mirror {
            from: from.to_string(),
            endpoint,
        })
    }
}

/// The registry `unpack` and `inventory` talk to (`--registry`): `host[:port]`, or a URL that
/// also says the scheme (`http://host[:port]`).
#[derive(Debug, Clone)]
pub struct RegistryTarget {
    /// `host[:port]`, the name credentials and references use.
    pub host: String,
    /// The endpoint a URL named; `None` for a bare `host[:port]` (https, or discovered with
    /// --insecure).
    pub endpoint: Option<Endpoint>,
}

impl RegistryTarget {
    /// Parses `--registry`; a path is refused (that is what --prefix is for).
    pub fn parse(s: &str) -> Result<RegistryTarget, String> {
        let (host, endpoint) = if s.contains("://") {
            let e = Endpoint::parse(s).map_err(|e| e.to_string())?;
            (e.host.clone(), Some(e))
        } else {
            (s.trim_end_matches('/').to_string(), None)
        };
        if host.is_empty() || host.contains('/') {
            return Err(
                "give host[:port] or http(s)://host[:port]; use --prefix for a path".into(),
            );
        }
        Ok(RegistryTarget { host, endpoint })
    }

    /// Parses the registry of `login` and `logout`: as `--registry`, and Docker Hub under any
    /// of the names Docker gives it (`https://index.docker.io/v1/` included).
    pub fn parse_login(s: &str) -> Result<RegistryTarget, String> {
        if airlock::registry::host_key(s) == "docker.io" {
            return Ok(RegistryTarget {
                host: "docker.io".into(),
                endpoint: None,
            });
        }
        RegistryTarget::parse(s)
    }
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::INSPECT)]
pub struct InspectArgs {
    /// The bundle file, its first part (bundle.tar.zst.000) or the base name of its parts.
    pub bundle: PathBuf,
    /// Format of what is printed on standard output (--output works too).
    #[arg(long = "format", alias = "output", value_name = "FORMAT", value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// Which images of a release: the same flags for `list` and `pack`.
#[derive(Debug, Args, Clone)]
pub struct SelectArgs {
    /// Rancher release, e.g. 1.6.14.
    #[arg(long = "version", value_name = "RANCHER_VERSION")]
    pub version: Option<String>,
    /// Only this Kubernetes template (default: every template the release may run).
    #[arg(long = "k8s-template", value_name = "TAG")]
    pub k8s_template: Option<String>,
    /// Only these groups: pause, infra, addons (or k8saddons), stacks, server. Repeatable.
    #[arg(long = "only", value_name = "GROUP", value_parser = parse_from_str::<Group>)]
    pub only: Vec<Group>,
    /// Add the server group: rancher/server, the agent it requires and its load-balancer
    /// image (to install or upgrade Rancher itself behind the air gap).
    #[arg(long = "with-server")]
    pub with_server: bool,
    /// Same as `--only addons`, spelled as Rancher's print-catalog-images.py does.
    #[arg(long = "k8saddons")]
    pub k8saddons: bool,
}

#[derive(Debug, Args)]
#[command(after_long_help = super::examples::LIST)]
pub struct ListArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Print the known releases and their Kubernetes templates.
    #[arg(long = "versions", conflicts_with_all = ["version", "k8s_template", "only", "with_server"])]
    pub versions: bool,
    /// Format of what is printed on standard output (--output works too).
    #[arg(long = "format", alias = "output", value_name = "FORMAT", value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
}

/// What a command prints on standard output: `--format` (`--output` too, except for pack,
/// whose `-o/--output` is the bundle it writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// One JSON object (docs/json.md).
    Json,
}

/// How progress is shown: the same flags for `pack`, `verify` and `unpack`.
#[derive(Debug, Args, Clone, Copy)]
pub struct ProgressArgs {
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
    /// When to draw progress bars on standard error.
    #[arg(long = "progress", value_name = "WHEN", value_enum, env = "AIRLOCK_PROGRESS", default_value_t = ProgressMode::Auto)]
    pub mode: ProgressMode,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, a plain line every few seconds elsewhere.
    Auto,
    /// Bars, even where standard error is not a terminal.
    Always,
    /// No progress (as --quiet).
    Never,
}

/// `list --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Images per k8s template, with where each is fetched from (`pack --images` reads it).
    Text,
    /// One JSON object (docs/json.md).
    Json,
    /// One unique reference a line, for other tools and `pack --images`.
    Refs,
}

/// Longest connect, read or request timeout accepted (a week): a deadline is now plus the
/// timeout, and a larger one would overflow the clock.
const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// How to reach registries: shared by every command that talks to one.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Send requests for REGISTRY to URL instead, same repository paths
    /// (e.g. docker.io=http://127.0.0.1:5001). Repeatable. A mirror gets only its own
    /// credentials (its host:port in config.json, or --login), never REGISTRY's.
    #[arg(long = "mirror", value_name = "REGISTRY=URL", value_parser = Mirror::parse)]
    pub mirror: Vec<Mirror>,
    /// User name (the password is read from standard input) for ONE registry: the --registry
    /// of unpack and inventory; for pack, the registry named by --login. Other registries get
    /// their credentials from ~/.docker/config.json (auths, credHelpers, credsStore) or none.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password from standard input (never from the command line); on a terminal it
    /// is asked for without echo.
    #[arg(long = "password-stdin", requires = "username")]
    pub password_stdin: bool,
    /// The registry --username is for, as HOST[:PORT] (docker.io, gcr.io, or a --mirror's
    /// 127.0.0.1:5001). Needed by pack; unpack and inventory use --registry.
    #[arg(long = "login", value_name = "REGISTRY", requires = "username")]
    pub login: Option<String>,
}

/// TLS, plain http and time bounds: shared by every command that talks to a registry,
/// `login` included.
#[derive(Debug, Args, Clone, Default)]
pub struct ConnectArgs {
    /// Allow plain http, and https without certificate verification. A registry given as
    /// HOST[:PORT] is asked once, over https, before any work: if it answers in plain http,
    /// plain http is used for it from then on.
    #[arg(long)]
    pub insecure: bool,
    /// As --insecure, for this registry only (HOST:PORT, or HOST for every port); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", value_parser = parse_authority)]
    pub insecure_registry: Vec<String>,
    /// Trust the CA certificates in this PEM file, on top of the system's (a private
    /// registry's CA, or its self-signed certificate itself).
    #[arg(long = "ca-file", value_name = "PEM", env = "AIRLOCK_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Docker's per-registry certificate directory, read as Docker reads it: the *.crt files
    /// in DIR/HOST:PORT/ (or DIR/HOST/ for port 443) are trusted for that registry.
    #[arg(
        long = "certs-dir",
        value_name = "DIR",
        env = "AIRLOCK_CERTS_D",
        default_value = airlock::registry::DEFAULT_CERTS_D
    )]
    pub certs_dir: PathBuf,
    /// Attempts per request in all, the first included (connection failures, 429, 5xx).
    #[arg(long = "retries", value_name = "N", env = "AIRLOCK_RETRY_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub retries: u32,
    /// Delay before the first retry, in milliseconds; it doubles with each retry, up to 20
    /// times this value.
    #[arg(
        long = "retry-delay-ms",
        value_name = "MS",
        env = "AIRLOCK_RETRY_BASE_MS",
        default_value_t = 500
    )]
    pub retry_delay_ms: u64,
    /// Seconds to open a connection (TCP and TLS handshake).
    #[arg(long = "connect-timeout", value_name = "SECS", env = "AIRLOCK_CONNECT_TIMEOUT_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub connect_timeout: u64,
    /// Seconds a connection may stay silent during one read or write.
    #[arg(long = "read-timeout", alias = "io-timeout", value_name = "SECS", env = "AIRLOCK_IO_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub read_timeout: u64,
    /// Seconds for a whole small request (manifest, token, HEAD, /v2/, error answer), and
    /// for the answer headers of a blob request (five times this after a blob upload).
    #[arg(long = "request-timeout", value_name = "SECS", env = "AIRLOCK_REQUEST_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub request_timeout: u64,
    /// Abort (and retry) a blob download or upload that moves fewer than KIB KiB in any
    /// --rate-window seconds.
    #[arg(
        long = "min-rate",
        value_name = "KIB",
        env = "AIRLOCK_MIN_RATE_KIB",
        default_value_t = 32
    )]
    pub min_rate_kib: u64,
    /// The window of --min-rate, in seconds.
    #[arg(long = "rate-window", value_name = "SECS", env = "AIRLOCK_RATE_WINDOW_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_window: u64,
}
