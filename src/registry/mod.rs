//! A blocking client for the OCI distribution API (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md>).
//!
//! One [`Client`] holds one shared `ureq::Agent`, the credentials, a bearer-token cache and the
//! endpoint rules (mirrors, plain-http registries). Spec operations are named after the spec:
//! [`Client::get_manifest`], [`Client::get_blob`], [`Client::blob_exists`], ...

mod auth;
mod catalog;
mod cert;
pub mod config_file;
mod credentials;
mod credhelper;
mod deadline;
mod error;
mod guard;
mod probe;
mod pull;
mod push;
mod tls;
mod transport;

pub use auth::{parse_challenges, Challenge, LoginCheck};
pub use credentials::{
    config_key, docker_config_path, host_key, CredentialStore, Credentials, Lookup, Source,
    HELPER_TIMEOUT,
};
pub use deadline::{MinRate, TooSlow};
pub use error::{redact_url, ErrorEntry, RegistryError};
pub use probe::{Schema1Support, PROBE as SCHEMA1_PROBE};
pub use pull::{detect_media_type, BlobStream, Head, Manifest, RateLimit};
pub use push::{BlobOutcome, OpenBlob, PushError};
pub use tls::DEFAULT_CERTS_D;
pub use transport::{Action, Client, Endpoint, Options, Retry, Stats};
