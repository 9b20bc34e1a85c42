//! Certificate verification for registries, and what a refused certificate means in words.
//!
//! Verification is rustls-platform-verifier's (webpki over the system roots plus the
//! operator's extra CA certificates), with one deliberate exception: a **self-signed server
//! certificate marked `CA:TRUE`**, as `openssl req -x509` makes it and Docker's registry docs
//! show (<https://distribution.github.io/distribution/about/deploying/>). webpki refuses such a
//! certificate as an end entity (`CaUsedAsEndEntity`); Go, curl and skopeo accept it when it is
//! trusted. [`Verifier`] accepts it only when all of these hold:
//! - the normal verification failed for exactly that reason, and no other;
//! - the server's certificate is **byte for byte** one of the certificates the operator put in
//!   `--ca-file` or `certs.d/HOST[:PORT]/*.crt` for this host (a pin, not a chain: nothing it
//!   signed is trusted through it beyond what webpki already trusts);
//! - it is within its validity dates, and it names the host (subjectAltName, as webpki checks);
//! - the handshake signature verifies with its key (rustls checks that after this verifier).

use std::fmt::Debug;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The platform verifier plus the pin for operator-trusted `CA:TRUE` server certificates.
#[derive(Debug)]
pub(crate) struct Verifier {
    inner: rustls_platform_verifier::Verifier,
    pinned: Vec<CertificateDer<'static>>,
}

impl Verifier {
    /// System roots plus `extra` (which are also the pinned certificates).
    pub(crate) fn new(
        extra: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Verifier, rustls::Error> {
        let inner =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra.clone(), provider)?;
        Ok(Verifier {
            inner,
            pinned: extra,
        })
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self
                        .pinned
                        .iter()
                        .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                verify_pinned(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `--insecure`: any certificate is accepted, but the handshake signature must still match
/// the certificate's key.
#[derive(Debug)]
pub(crate) struct NoVerify(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(CertificateError::Other(o))
        if matches!(o.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity)))
}

/// Dates and name of a pinned certificate (webpki stopped at its basic constraints).
fn verify_pinned(
    cert: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    let (not_before, not_after) = validity(cert.as_ref()).ok_or_else(bad)?;
    if now.as_secs() < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_before)),
        }
        .into());
    }
    if now.as_secs() > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after)),
        }
        .into());
    }
    let ee = webpki::EndEntityCert::try_from(cert).map_err(|_| bad())?;
    ee.verify_is_valid_for_subject_name(name)
        .map_err(|e| match e {
            webpki::Error::CertNotValidForName(ctx) => CertificateError::NotValidForNameContext {
                expected: ctx.expected,
                presented: ctx.presented,
            }
            .into(),
            _ => rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
        })
}

/// `notBefore` and `notAfter` of a DER certificate, in seconds since the epoch (RFC 5280
/// 4.1: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter } ...`).
pub(crate) fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (_, cert, _) = tlv(der)?;
    let (_, mut tbs, _) = tlv(cert)?;
    let (tag, _, rest) = tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest; // explicit version
    }
    let (_, _, rest) = tlv(tbs)?; // serialNumber
    let (_, _, rest) = tlv(rest)?; // signature
    let (_, _, rest) = tlv(rest)?; // issuer
    let (tag, validity, _) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (t1, before, rest) = tlv(validity)?;
    let (t2, after, _) = tlv(rest)?;
    Some((der_time(t1, before)?, der_time(t2, after)?))
}

/// One DER element: (tag, contents, what follows).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((tag, b.get(head..end)?, b.get(end..)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), seconds since the epoch.
fn der_time(tag: u8, v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, h, m, sec) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-01-31` for seconds since the epoch.
fn date(t: UnixTime) -> String {
    let days = (t.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A refused handshake in words: the problem, and which flag or file helps. `ca_dir` is the
/// `certs.d` directory for this host.
pub(crate) fn explain(e: &rustls::Error, host: &str, ca_dir: &str) -> (String, String) {
    let trust = format!(
        "give the registry's CA certificate with --ca-file ca.pem, or install it as \
         {ca_dir}/ca.crt (where Docker reads it); --insecure-registry HOST:PORT (or --insecure) skips verification"
    );
    let rustls::Error::InvalidCertificate(c) = e else {
        return (
            format!("the TLS handshake failed: {e}"),
            format!("check that {host} serves https on this port"),
        );
    };
    match c {
        CertificateError::UnknownIssuer => (
            "its certificate is signed by an authority this machine does not trust".into(),
            trust,
        ),
        _ if is_ca_used_as_end_entity(e) => (
            "it presents a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` \
             makes) as its own, and no trusted file holds that exact certificate"
                .into(),
            format!(
                "trust that certificate itself: give the server's certificate file with \
                 --ca-file, or install it as {ca_dir}/ca.crt"
            ),
        ),
        CertificateError::NotValidForNameContext { presented, .. } => (
            format!(
                "its certificate is for {} and not for {host}",
                if presented.is_empty() {
                    "no name".to_string()
                } else {
                    presented
                        .iter()
                        .take(8)
                        .map(|p| presented_name(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            format!(
                "connect with a name the certificate carries, or reissue it with {host} in \
                 its subjectAltName"
            ),
        ),
        CertificateError::NotValidForName => (
            format!("its certificate is not for {host}"),
            format!("reissue the certificate with {host} in its subjectAltName"),
        ),
        CertificateError::ExpiredContext { time, not_after } => (
            format!("its certificate expired on {}", date(*not_after)),
            format!(
                "renew the registry's certificate (this machine's clock says {}); \
                 --insecure-registry HOST:PORT (or --insecure) skips verification",
                date(*time)
            ),
        ),
        CertificateError::Expired => (
            "its certificate has expired".into(),
            "renew the registry's certificate; --insecure-registry HOST:PORT (or --insecure) skips verification".into(),
        ),
        CertificateError::NotValidYetContext { time, not_before } => (
            format!("its certificate is not valid before {}", date(*not_before)),
            format!("check this machine's clock (it says {})", date(*time)),
        ),
        CertificateError::NotValidYet => (
            "its certificate is not valid yet".into(),
            "check this machine's clock".into(),
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
            "its certificate is not meant for TLS servers (extended key usage)".into(),
            "reissue the certificate with the serverAuth extended key usage".into(),
        ),
        other => (format!("its certificate was refused: {other:?}"), trust),
    }
}

/// A name from a (hostile) certificate, as webpki shows it (`DnsName("x")`,
/// `IpAddress(1.2.3.4)`), made plain and safe for a terminal.
fn presented_name(p: &str) -> String {
    let inner = ["DnsName(\"", "UniformResourceIdentifier(\"", "IpAddress("]
        .iter()
        .find_map(|pre| p.strip_prefix(pre))
        .map(|rest| rest.trim_end_matches(')').trim_end_matches('"'))
        .unwrap_or(p);
    inner
        .chars()
        .take(100)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 valid from one year to another.
    fn cert(is_ca: bool, years: (i32, i32)) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
        if is_ca {
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        p.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        p.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        p.self_signed(&key).unwrap().der().clone()
    }

    const VALID: (i32, i32) = (2000, 2099);

    fn now() -> UnixTime {
        UnixTime::now()
    }

    #[test]
    fn reads_validity_dates() {
        let c = cert(true, (2001, 2002));
        assert_eq!(validity(c.as_ref()), Some((978_307_200, 1_009_843_200)));
        assert!(validity(b"\x30\x03\x02\x01").is_none());
        assert!(validity(&[]).is_none());
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x18, b"20000229000000Z"), Some(951_782_400));
        assert_eq!(der_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert!(der_time(0x17, b"701301000000Z").is_none());
        assert_eq!(
            date(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                951_782_400
            ))),
            "2000-02-29"
        );
    }

    #[test]
    fn pinned_certificates_still_need_dates_and_name() {
        let ip = ServerName::try_from("127.0.0.1").unwrap();
        let other = ServerName::try_from("registry.example").unwrap();
        let good = cert(true, VALID);
        verify_pinned(&good, &ip, now()).unwrap();
        let e = verify_pinned(&good, &other, now()).unwrap_err();
        assert!(
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{e:?}"
        );
        let expired = cert(true, (2000, 2001));
        let e = verify_pinned(&expired, &ip, now()).unwrap_err();
        assert!(
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{e:?}"
        );
        let future = cert(true, (2098, 2099));
        let e = verify_pinned(&future, &ip, now()).unwrap_err();
        assert!(
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn only_a_byte_identical_ca_true_certificate_is_pinned() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = cert(true, VALID);
        let lookalike = cert(true, VALID);
        let v = Verifier::new(vec![server.clone()], provider.clone()).unwrap();
        let ip = ServerName::try_from("127.0.0.1").unwrap();
        v.verify_server_cert(&server, &[], &ip, &[], now()).unwrap();
        // Same names and dates, another key: not the pinned certificate, so webpki's
        // refusal stands.
        let e = v
            .verify_server_cert(&lookalike, &[], &ip, &[], now())
            .unwrap_err();
        assert!(is_ca_used_as_end_entity(&e), "{e:?}");
        // Pinned, but asked for another name.
        let other = ServerName::try_from("registry.example").unwrap();
        let e = v
            .verify_server_cert(&server, &[], &other, &[], now())
            .unwrap_err();
        assert!(
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{e:?}"
        );
        // An ordinary (CA:FALSE) self-signed certificate needs no pin: webpki takes it as its
        // own trust anchor.
        let leaf = cert(false, VALID);
        let v = Verifier::new(vec![leaf.clone()], provider).unwrap();
        v.verify_server_cert(&leaf, &[], &ip, &[], now()).unwrap();
    }

    #[test]
    fn presented_names_are_plain_and_safe() {
        assert_eq!(
            presented_name("DnsName(\"registry.example\")"),
            "registry.example"
        );
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(presented_name("DnsName(\"a\x1b[2Jb\")"), "a?[2Jb");
    }

    #[test]
    fn explains_refusals_with_the_fix() {
        let (p, f) = explain(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "127.0.0.1",
            "/etc/docker/certs.d/127.0.0.1:5000",
        );
        assert!(p.contains("does not trust"), "{p}");
        assert!(
            f.contains("--ca-file") && f.contains("/etc/docker/certs.d/127.0.0.1:5000/ca.crt"),
            "{f}"
        );
    }
}
