//! The JSON documents of `--format json`: one object per run, camelCase keys as in
//! bundle.json, each with `schemaVersion`, `command`, `ok` and what the command read (the
//! `bundle` path, the `registry`, the `release`). Every key is documented in docs/json.md, and
//! a test holds the two together.

use serde::Serialize;

use super::out;

/// The version of every document's shape: raised when a key changes meaning or goes away
/// (new keys may appear without it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a, T: Serialize> {
    schema_version: u32,
    command: &'a str,
    ok: bool,
    #[serde(flatten)]
    body: T,
}

/// Prints the document of `command` with `body`'s keys.
pub fn print(command: &str, ok: bool, body: impl Serialize) -> anyhow::Result<()> {
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        command,
        ok,
        body,
    };
    out(&serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// What a failed run prints with `--format json`, besides the error on standard error: the
/// input it was given and the error with its causes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed<'a> {
    #[serde(flatten)]
    pub input: serde_json::Map<String, serde_json::Value>,
    pub error: &'a str,
}

/// The input of a failed run: `(key, value)`, e.g. `("bundle", "b.tar.zst")`.
pub fn print_failure(command: &str, input: &[(&str, String)], e: &anyhow::Error) {
    let error = airlock::error_chain(e.as_ref());
    let body = Failed {
        input: input
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
            .collect(),
        error: &error,
    };
    // Serialising strings cannot fail; should it, the error on stderr still says everything.
    let _ = print(command, false, body);
}
