//! A tiny HTTP/1.1 client over `std::net::TcpStream` for driving test servers directly.
//!
//! Plain HTTP only, one request per connection (`Connection: close`), bodies sent with
//! `Content-Length`; responses may be `Content-Length`, chunked or read-to-EOF. It is deliberately
//! separate from the product's `ureq` client, so a harness check never shares that client's bugs.
//! TLS servers are driven with skopeo instead. Upload flow: distribution spec, "Pushing blobs":
//! <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs>.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Headers in the order received; names as sent by the server.
    pub headers: Vec<(String, String)>,
    /// The decoded body (chunked encoding removed).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to a `http://host:port/path` URL and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: the harness HTTP client speaks plain http only (use skopeo for TLS)"),
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;

    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    // Always send a length for methods that carry a body, as distribution rejects a PUT/POST
    // without one.
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD")
}

/// Parses a complete response read up to EOF.
pub fn parse_response(raw: &[u8], head_request: bool) -> io::Result<Response> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("response has no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    // "HTTP/1.1 200 OK"; Go's TLS listener answers plain requests with HTTP/1.0 400.
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[end + 4..];
    if head_request || status == 204 || status == 304 {
        return Ok(response);
    }
    response.body = if response
        .header("Transfer-Encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        decode_chunked(rest).ok_or_else(|| bad("malformed chunked body"))?
    } else if let Some(len) = response.header("Content-Length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        rest.get(..len)
            .ok_or_else(|| bad("body shorter than Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn decode_chunked(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Like [`request`] but panics with the method and URL on a transport error.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// `GET url`, panicking on a transport error.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Response {
    send("GET", url, headers, &[])
}

/// The value of an `Authorization: Basic` header.
pub fn basic(user: &str, password: &str) -> String {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {creds}")
}

/// The value of an `Authorization: Bearer` header.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Resolves a `Location` header against the URL of the request that returned it.
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}{location}", &base[..origin_end])
}

/// A parsed `WWW-Authenticate` challenge: the scheme and its `key="value"` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `Basic` or `Bearer`.
    pub scheme: String,
    /// Parameters such as `realm`, `service`, `scope`, in order.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses one challenge, e.g. `Bearer realm="http://x/token",service="svc"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, mut rest) = header.trim().split_once(' ')?;
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if rest.is_empty() {
                break;
            }
            let (key, after) = rest.split_once('=')?;
            let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
                let close = quoted.find('"')?;
                (&quoted[..close], &quoted[close + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            params.push((key.trim().to_string(), value.to_string()));
            rest = after;
        }
        Some(Challenge {
            scheme: scheme.to_string(),
            params,
        })
    }

    /// The value of parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Pushes `data` as a blob of `repo` with a monolithic upload (POST, then PUT `?digest=`), and
/// returns its digest. `auth` is a full `Authorization` value. Panics unless the registry answers
/// 202 then 201.
pub fn push_blob(registry_url: &str, repo: &str, data: &[u8], auth: Option<&str>) -> String {
    let digest = airlock::digest::Digest::of(data).to_string();
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    let start_url = format!("{registry_url}/v2/{repo}/blobs/uploads/");
    let started = send("POST", &start_url, &headers, &[]);
    assert_eq!(started.status, 202, "POST {start_url}: {}", started.text());
    let location = started.header("Location").expect("upload Location header");
    let mut put_url = resolve(&start_url, location);
    put_url.push(if put_url.contains('?') { '&' } else { '?' });
    put_url.push_str(&format!("digest={digest}"));
    let mut put_headers = headers.clone();
    put_headers.push(("Content-Type", "application/octet-stream"));
    let done = send("PUT", &put_url, &put_headers, data);
    assert_eq!(done.status, 201, "PUT {put_url}: {}", done.text());
    digest
}

/// `GET /v2/<repo>/blobs/<digest>`.
pub fn get_blob(registry_url: &str, repo: &str, digest: &str, auth: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    get(
        &format!("{registry_url}/v2/{repo}/blobs/{digest}"),
        &headers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:1/token",service="svc",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("http://127.0.0.1:1/token"));
        assert_eq!(c.param("service"), Some("svc"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn decodes_chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw, false).unwrap().body, b"abcde");
    }

    #[test]
    fn resolves_relative_locations() {
        assert_eq!(
            resolve(
                "http://127.0.0.1:5/v2/x/blobs/uploads/",
                "/v2/x/blobs/uploads/u?s=1"
            ),
            "http://127.0.0.1:5/v2/x/blobs/uploads/u?s=1"
        );
    }
}
