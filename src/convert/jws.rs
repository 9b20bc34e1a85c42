//! Checking the signatures of a signed schema 1 manifest the way the distribution registry does
//! before it stores one, so that `pack --keep-digests` refuses what a registry would refuse at
//! `unpack`, after the image's blobs were pushed.
//!
//! A registry that stores schema 1 (`compatibility.schema1.enabled` in distribution 2.x) parses
//! the document with libtrust's `ParsePrettySignature` and answers `MANIFEST_UNVERIFIED` unless
//! `Verify` accepts every signature (distribution `registry/storage/schema1manifesthandler.go`).
//! An unsigned schema 1 document (`v1+json`, no `"signatures"`) does not even parse there
//! (libtrust `ErrMissingSignatureKey`). What libtrust checks (`jsonsign.go`, `ec_key.go`,
//! `rsa_key.go`, `util.go`):
//!
//! - the signed bytes are the protected header as written, `.`, and the base64url (no padding)
//!   of the payload ([`super::schema1::payload`]);
//! - the key is the header's `jwk` (`x5c`, a certificate chain, takes precedence when present:
//!   airlock does not check those and says so); a `kid`, when present, must be the key's libtrust
//!   fingerprint;
//! - `EC` keys: `P-256` with `ES256`, `P-384` with `ES384` (`P-521`/`ES512` is not in ring, and
//!   is reported as not checked); coordinates of exactly the curve's length; the signature is
//!   `r || s`, each of the curve's length;
//! - `RSA` keys: `RS256`, `RS384` or `RS512`, PKCS#1 v1.5.
//!
//! The signatures prove nothing about the content (anyone can sign with a key of their own; the
//! digest covers the payload). They matter only because a registry refuses a document whose
//! signatures do not verify.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self as sig, UnparsedPublicKey};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::schema1;

/// Why a registry would refuse to store a schema 1 document, or why airlock cannot tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `"signatures"`: distribution cannot even parse it (libtrust "missing signature key").
    #[error("it is not signed, and registries store only signed schema 1 manifests")]
    Unsigned,
    /// The document or a signature is malformed, or a signature does not verify.
    #[error("signature {index} {reason}")]
    Invalid { index: usize, reason: String },
    /// A signature of a kind airlock does not check (a certificate chain, P-521).
    #[error("signature {index} {reason}, which airlock cannot check")]
    Unchecked { index: usize, reason: String },
}

#[derive(Deserialize)]
struct Document {
    signatures: Option<Vec<Block>>,
}

#[derive(Deserialize)]
struct Block {
    header: Option<Header>,
    #[serde(default)]
    signature: String,
    #[serde(default)]
    protected: String,
}

#[derive(Deserialize)]
struct Header {
    jwk: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

/// Checks every signature of the schema 1 document `raw` as libtrust does; `Ok` with their
/// number when a registry would accept them.
pub fn verify(raw: &[u8]) -> Result<usize, SignatureError> {
    let invalid = |index: usize, reason: String| SignatureError::Invalid { index, reason };
    let doc: Document = serde_json::from_slice(raw).map_err(|e| {
        invalid(
            0,
            format!("cannot be read: the signatures are malformed ({e})"),
        )
    })?;
    let Some(blocks) = doc.signatures else {
        return Err(SignatureError::Unsigned);
    };
    let (payload, _) = schema1::payload("manifest", raw)
        .map_err(|e| invalid(0, format!("does not frame a payload: {e}")))?;
    let payload = URL_SAFE_NO_PAD.encode(payload);
    for (i, b) in blocks.iter().enumerate() {
        let header = b
            .header
            .as_ref()
            .ok_or_else(|| invalid(i, "has no header".into()))?;
        if !header.x5c.is_empty() {
            return Err(SignatureError::Unchecked {
                index: i,
                reason: "is made with a certificate chain (x5c)".into(),
            });
        }
        let jwk = header
            .jwk
            .as_ref()
            .ok_or_else(|| invalid(i, "names no public key (no jwk)".into()))?;
        let key = Jwk::parse(jwk).map_err(|e| match e {
            KeyError::Invalid(r) => invalid(i, r),
            KeyError::Unchecked(r) => SignatureError::Unchecked {
                index: i,
                reason: r,
            },
        })?;
        let signature = schema1::b64url(&b.signature)
            .map_err(|e| invalid(i, format!("is not base64url: {e}")))?;
        let signed = format!("{}.{payload}", b.protected);
        key.verify(&header.alg, signed.as_bytes(), &signature)
            .map_err(|e| match e {
                KeyError::Invalid(r) => invalid(i, r),
                KeyError::Unchecked(r) => SignatureError::Unchecked {
                    index: i,
                    reason: r,
                },
            })?;
    }
    Ok(blocks.len())
}

/// The libtrust fingerprint (`kid`) of the `jwk` whose members are `members`, for signers; `None`
/// for a key that is not valid.
pub fn key_id_of(members: &[(&str, String)]) -> Option<String> {
    let map = members
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    Jwk::parse(&map).ok().map(|k| k.key_id())
}

enum KeyError {
    Invalid(String),
    Unchecked(String),
}

/// A public key from a JWS header's `jwk`.
enum Jwk {
    Ec {
        curve: &'static str,
        /// `0x04 || x || y`, as ring takes it.
        point: Vec<u8>,
    },
    Rsa {
        /// Big-endian, without leading zeros.
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl Jwk {
    fn parse(jwk: &serde_json::Map<String, serde_json::Value>) -> Result<Jwk, KeyError> {
        let text = |k: &str| -> Result<&str, KeyError> {
            jwk.get(k)
                .and_then(|v| v.as_str())
                .ok_or_else(|| KeyError::Invalid(format!("has a jwk without a string {k:?}")))
        };
        let bytes = |k: &str| -> Result<Vec<u8>, KeyError> {
            schema1::b64url(text(k)?).map_err(|e| {
                KeyError::Invalid(format!("has a jwk whose {k:?} is not base64url: {e}"))
            })
        };
        let key = match text("kty")? {
            "EC" => {
                let (curve, len) = match text("crv")? {
                    "P-256" => ("P-256", 32),
                    "P-384" => ("P-384", 48),
                    "P-521" => return Err(KeyError::Unchecked("uses a P-521 key".into())),
                    other => {
                        return Err(KeyError::Invalid(format!(
                            "has a jwk of unknown curve {:?}",
                            short(other)
                        )))
                    }
                };
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != len || y.len() != len {
                    return Err(KeyError::Invalid(format!(
                        "has a {curve} jwk whose coordinates are not {len} bytes each"
                    )));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Jwk::Ec { curve, point }
            }
            "RSA" => {
                let n = strip_zeros(&bytes("n")?).to_vec();
                let e = strip_zeros(&bytes("e")?).to_vec();
                if e.is_empty() || e.len() > 4 || n.is_empty() {
                    return Err(KeyError::Invalid(
                        "has an RSA jwk with an invalid n or e".into(),
                    ));
                }
                Jwk::Rsa { n, e }
            }
            other => {
                return Err(KeyError::Invalid(format!(
                    "has a jwk of unknown type {:?}",
                    short(other)
                )))
            }
        };
        if let Some(kid) = jwk.get("kid") {
            let kid = kid.as_str().ok_or_else(|| {
                KeyError::Invalid("has a jwk whose \"kid\" is not a string".into())
            })?;
            if kid != key.key_id() {
                return Err(KeyError::Invalid(
                    "has a jwk whose \"kid\" is not the key's fingerprint".into(),
                ));
            }
        }
        Ok(key)
    }

    /// libtrust's fingerprint: the sha256 of the key's PKIX `SubjectPublicKeyInfo` DER (Go's
    /// `x509.MarshalPKIXPublicKey`), its first 240 bits in base32 in groups of four:
    /// `ABCD:EFGH:...` (libtrust `keyIDFromCryptoKey`, `keyIDEncode`).
    fn key_id(&self) -> String {
        // DER: rsaEncryption with NULL parameters; id-ecPublicKey with the named curve.
        const RSA: &[u8] = &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ];
        const EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        let (algorithm, key) = match self {
            Jwk::Ec { curve, point } => {
                let curve = if *curve == "P-256" { P256 } else { P384 };
                ([EC, curve].concat(), point.clone())
            }
            Jwk::Rsa { n, e } => (
                RSA.to_vec(),
                der(0x30, &[der_uint(n), der_uint(e)].concat()),
            ),
        };
        let bits = [&[0u8][..], &key].concat();
        let spki = der(0x30, &[der(0x30, &algorithm), der(0x03, &bits)].concat());
        let b32 = base32(&Sha256::digest(&spki)[..30]);
        b32.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("base32 is ASCII"))
            .collect::<Vec<_>>()
            .join(":")
    }

    fn verify(&self, alg: &str, signed: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let alg_text = short(alg);
        match self {
            Jwk::Ec { curve, point } => {
                let (want, algorithm) = match *curve {
                    "P-256" => ("ES256", &sig::ECDSA_P256_SHA256_FIXED),
                    _ => ("ES384", &sig::ECDSA_P384_SHA384_FIXED),
                };
                if alg != want {
                    return Err(KeyError::Invalid(format!(
                        "says {alg_text:?} for a {curve} key, which signs only with {want}"
                    )));
                }
                if signature.len() != point.len() - 1 {
                    return Err(KeyError::Invalid(format!(
                        "is {} bytes long, not {}",
                        signature.len(),
                        point.len() - 1
                    )));
                }
                UnparsedPublicKey::new(algorithm, point)
                    .verify(signed, signature)
                    .map_err(|_| KeyError::Invalid(format!("({want}) does not verify")))
            }
            Jwk::Rsa { n, e } => {
                let algorithm: &sig::RsaParameters = match alg {
                    "RS256" => &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                    "RS384" => &sig::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
                    _ => {
                        return Err(KeyError::Invalid(format!(
                        "says {alg_text:?} for an RSA key, which signs with RS256, RS384 or RS512"
                    )))
                    }
                };
                let bits = n.len() * 8 - n[0].leading_zeros() as usize;
                let min = if alg == "RS384" { 2048 } else { 1024 };
                if !(min..=8192).contains(&bits) {
                    return Err(KeyError::Unchecked(format!(
                        "uses a {bits}-bit RSA key with {alg}"
                    )));
                }
                sig::RsaPublicKeyComponents { n, e }
                    .verify(algorithm, signed, signature)
                    .map_err(|_| KeyError::Invalid(format!("({alg}) does not verify")))
            }
        }
    }
}

/// At most 40 characters of a value from the document (printed with `{:?}`, which escapes).
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A DER element: tag, definite length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of the unsigned big-endian number `n`.
fn der_uint(n: &[u8]) -> Vec<u8> {
    let n = strip_zeros(n);
    let mut content = Vec::with_capacity(n.len() + 1);
    if n.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(n);
    der(0x02, &content)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// RFC 4648 base32, without padding.
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::jws::{sign, sign_with, SigningKey};

    const PAYLOAD: &[u8] = b"{\n   \"schemaVersion\": 1,\n   \"name\": \"x/y\",\n   \"fsLayers\": [],\n   \"history\": []\n}";

    #[test]
    fn base32_is_rfc4648() {
        // RFC 4648 section 10.
        for (i, o) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(i.as_bytes()), o);
        }
    }

    #[test]
    fn the_fixture_signature_verifies_and_a_changed_one_does_not() {
        let good = sign(PAYLOAD);
        assert_eq!(verify(&good), Ok(1));
        let text = String::from_utf8(good.clone()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        let s = v["signatures"][0]["signature"].as_str().unwrap();
        // One character of the signature changed (still base64url).
        let flipped = format!("{}{}", if s.starts_with('A') { "B" } else { "A" }, &s[1..]);
        let bad = text.replace(s, &flipped);
        assert!(
            matches!(verify(bad.as_bytes()), Err(SignatureError::Invalid { index: 0, ref reason }) if reason.contains("does not verify")),
            "{:?}",
            verify(bad.as_bytes())
        );
        // Another algorithm named in the (unsigned) header.
        let bad = text.replace("\"RS256\"", "\"RS512\"");
        assert!(matches!(
            verify(bad.as_bytes()),
            Err(SignatureError::Invalid { .. })
        ));
        let bad = text.replace("\"RS256\"", "\"none\"");
        assert!(matches!(
            verify(bad.as_bytes()),
            Err(SignatureError::Invalid { .. })
        ));
        // Unsigned.
        assert_eq!(verify(PAYLOAD), Err(SignatureError::Unsigned));
    }

    #[test]
    fn ec_keys_verify_with_their_curve_and_a_kid_must_be_the_fingerprint() {
        for curve in [Curve::P256, Curve::P384] {
            let key = SigningKey::generate_ec(curve);
            for kid in [false, true] {
                let good = sign_with(PAYLOAD, &key, kid);
                assert_eq!(verify(&good), Ok(1), "{curve:?} kid {kid}");
            }
            let text = String::from_utf8(sign_with(PAYLOAD, &key, true)).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let kid = v["signatures"][0]["header"]["jwk"]["kid"].as_str().unwrap();
            assert_eq!(kid.len(), 59, "{kid}");
            let bad = text.replace(
                kid,
                "ABCD:EFGH:IJKL:MNOP:QRST:UVWX:YZ23:4567:ABCD:EFGH:IJKL:MNOP",
            );
            let e = verify(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("fingerprint"), "{e}");
            let other = if curve == Curve::P256 {
                "ES384"
            } else {
                "ES256"
            };
            let alg = if curve == Curve::P256 {
                "ES256"
            } else {
                "ES384"
            };
            let e = verify(text.replace(alg, other).as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains("signs only with"), "{e}");
        }
    }

    #[test]
    fn a_key_fingerprint_is_libtrusts() {
        // A P-256 key and the kid libtrust gave it, from a signed manifest Docker pushed in
        // 2016 (containers/image `internal/manifest/testdata/v2s1.manifest.json`).
        let jwk: Vec<(&str, String)> = vec![
            ("crv", "P-256".into()),
            ("kty", "EC".into()),
            ("x", "ReC5c0J9tgXSdUL4_xzEt5RsD8kFt2wWSgJcpAcOQx8".into()),
            ("y", "3sBGEqQ3ZMeqPKwQBAadN2toOUEASha18xa0WwsDF-M".into()),
        ];
        assert_eq!(
            key_id_of(&jwk).as_deref(),
            Some("OZ45:U3IG:TDOI:PMBD:NGP2:LDIW:II2U:PSBI:MMCZ:YZUP:TUUO:XPZT")
        );
        // DER lengths past 127 bytes take the long form (an RSA modulus).
        assert_eq!(der(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(der(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(der_uint(&[0x00, 0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(
            der_uint(&[0x01, 0x00, 0x01]),
            [0x02, 0x03, 0x01, 0x00, 0x01]
        );
    }

    #[test]
    fn malformed_and_unchecked_signatures_are_told_apart() {
        let good = String::from_utf8(sign(PAYLOAD)).unwrap();
        let no_key = good.replace("\"jwk\"", "\"other\"");
        assert!(
            matches!(verify(no_key.as_bytes()), Err(SignatureError::Invalid { ref reason, .. }) if reason.contains("no jwk")),
        );
        let chain = good.replace(
            "\"alg\": \"RS256\"",
            "\"alg\": \"RS256\", \"x5c\": [\"MIIB\"]",
        );
        assert!(matches!(
            verify(chain.as_bytes()),
            Err(SignatureError::Unchecked { .. })
        ));
        let v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let kty = good.replace("\"kty\": \"RSA\"", "\"kty\": \"oct\"");
        assert!(matches!(
            verify(kty.as_bytes()),
            Err(SignatureError::Invalid { .. })
        ));
        let empty = good.replace(v["signatures"][0]["signature"].as_str().unwrap(), "");
        assert!(matches!(
            verify(empty.as_bytes()),
            Err(SignatureError::Invalid { .. })
        ));
        assert!(matches!(
            verify(br#"{"schemaVersion":1,"signatures":[]}"#),
            Err(SignatureError::Invalid { .. })
        ));
    }

    use crate::fixtures::jws::Curve;
}
