//! Listing a registry: `GET /v2/_catalog` and `GET /v2/<name>/tags/list`, both paginated with
//! `n` / `last` and the `Link: <...>; rel="next"` header (distribution spec, "Listing Tags" and
//! the registry's catalog API). `airlock inventory` uses them on the disconnected side.

use ureq::http;

use super::error::{redact_url, RegistryError};
use super::transport::{encode_query, Action, Client, Req, ReqBody};

/// Largest listing page accepted.
const MAX_LIST_BYTES: u64 = 16 << 20;

impl Client {
    /// Every repository the registry lists, `page` names per request.
    pub fn catalog(&self, registry: &str, page: usize) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let first = format!("/v2/_catalog?n={page}");
        self.paginate(
            registry,
            None,
            first,
            page,
            |raw| serde_json::from_slice::<Page>(raw).map(|p| p.repositories.unwrap_or_default()),
            |last| format!("/v2/_catalog?n={page}&last={}", encode_query(last)),
        )
    }

    /// Every tag of `repository`; an unknown repository has none.
    pub fn tags_list(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let page = 1000;
        let first = format!("/v2/{repository}/tags/list?n={page}");
        let r = self.paginate(
            registry,
            Some(repository),
            first,
            page,
            |raw| serde_json::from_slice::<Page>(raw).map(|p| p.tags.unwrap_or_default()),
            |last| {
                format!(
                    "/v2/{repository}/tags/list?n={page}&last={}",
                    encode_query(last)
                )
            },
        );
        match r {
            Err(RegistryError::Api { status: 404, .. }) => Ok(vec![]),
            r => r,
        }
    }

    /// Follows `Link` headers (or, without one, `last=` after a full page) until the end.
    fn paginate(
        &self,
        registry: &str,
        repository: Option<&str>,
        first: String,
        page: usize,
        parse: impl Fn(&[u8]) -> Result<Vec<String>, serde_json::Error>,
        after: impl Fn(&str) -> String,
    ) -> Result<Vec<String>, RegistryError> {
        let mut out: Vec<String> = Vec::new();
        let mut path = Some(first);
        while let Some(p) = path.take() {
            let req = Req {
                method: http::Method::GET,
                registry,
                repository,
                action: Action::Pull,
                path: p,
                headers: vec![],
                body: ReqBody::Empty,
                follow_redirects: true,
            };
            let mut resp = self.send(&req)?;
            let url = format!("{}{}", self.endpoint(registry).base(), req.path);
            if resp.status().as_u16() != 200 {
                return Err(Client::api_error(&req.method, &url, resp));
            }
            let link = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let raw = resp
                .body_mut()
                .with_config()
                .limit(MAX_LIST_BYTES)
                .read_to_vec()
                .map_err(|e| RegistryError::Body {
                    method: "GET".into(),
                    url: redact_url(&url),
                    source: std::io::Error::other(e),
                })?;
            let names = parse(&raw).map_err(|e| RegistryError::Protocol {
                method: "GET".into(),
                url: redact_url(&url),
                reason: format!("not a listing: {e}"),
            })?;
            let full = names.len() >= page;
            let progressed = names.last().is_some_and(|l| out.last() != Some(l));
            out.extend(names);
            path = match link {
                Some(l) if progressed => Some(l),
                // Some registries omit Link; a full page may have more behind it.
                None if full && progressed => out.last().map(|l| after(l)),
                _ => None,
            };
        }
        out.dedup();
        Ok(out)
    }
}

/// The path of `Link: </v2/_catalog?last=x&n=2>; rel="next"`; only same-registry paths.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        let t = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        t.starts_with("/v2/").then(|| t.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(next_link(r#"<http://evil/v2/x>; rel="next""#), None);
        assert_eq!(next_link(r#"</v2/x>; rel="prev""#), None);
    }
}
