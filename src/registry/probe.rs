//! Does a registry store schema 1 manifests? Asked before `unpack --keep-digests` pushes a
//! schema 1 image, so that a registry that cannot take it fails the unpack before anything is
//! pushed, naming the image, rather than after its blobs went up.
//!
//! The question is a `PUT` of a real signed schema 1 manifest (`data/schema1-probe.json`,
//! signed by the fixture generator's test key) by its digest, so no tag is touched. It lists a
//! layer no registry holds. A registry that stores schema 1 verifies the signature, then finds
//! the layer missing and refuses with `MANIFEST_BLOB_UNKNOWN`: it would take the real image.
//! One that does not refuses the manifest itself, whatever the words: distribution 2.8 without
//! `compatibility.schema1.enabled` answers `500 UNKNOWN` (its log says "manifest schema v1
//! unsupported"), others `MANIFEST_INVALID` or an unsupported media type (distribution 3.0,
//! Docker Hub since 2024-11). A registry that answers 201 stored it without checking its
//! layer: it takes schema 1 too, and the probe is deleted again (best effort).
//! Source: distribution `registry/storage/signedmanifesthandler.go` `verifyManifest`,
//! `manifeststore.go` (`ErrSchemaV1Unsupported`).

use ureq::http;

use super::error::RegistryError;
use super::transport::{Action, Client, Req, ReqBody};
use crate::digest::Digest;
use crate::media_type;

/// The probe: a signed schema 1 manifest of `airlock/schema1-probe:probe` over a layer whose
/// digest is the sha256 of "airlock schema 1 probe: no registry holds this layer".
pub const PROBE: &[u8] = include_bytes!("../../data/schema1-probe.json");

/// What a registry answered the schema 1 probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema1Support {
    /// It stores schema 1 manifests.
    Accepted,
    /// It refuses them; what it said.
    Refused(String),
}

impl Client {
    /// Asks `registry` whether it stores schema 1 manifests, in `repository` (where the image
    /// would go; push access was checked there). See the module documentation.
    pub fn schema1_support(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Schema1Support, RegistryError> {
        let digest = crate::convert::schema1::registry_digest(PROBE)
            .expect("the probe is a signed schema 1 manifest");
        match self.put_manifest(
            registry,
            repository,
            &digest.to_string(),
            media_type::DOCKER_SCHEMA1_SIGNED,
            PROBE,
        ) {
            Ok(_) => {
                self.delete_manifest(registry, repository, &digest);
                Ok(Schema1Support::Accepted)
            }
            Err(RegistryError::Api { status, errors, .. }) => {
                if errors.iter().any(|e| e.code == "MANIFEST_BLOB_UNKNOWN") {
                    Ok(Schema1Support::Accepted)
                } else {
                    let said: Vec<String> = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.code, e.message))
                        .collect();
                    let mut reason = if said.is_empty() {
                        format!("it answered a schema 1 manifest with HTTP {status}")
                    } else {
                        format!(
                            "it answered a schema 1 manifest with HTTP {status}, {}",
                            said.join("; ")
                        )
                    };
                    if status == 500 {
                        reason.push_str(
                            ", as distribution 2.8 does when compatibility.schema1 is not enabled",
                        );
                    }
                    Ok(Schema1Support::Refused(reason))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `DELETE` of a manifest by digest, best effort (deletion may be disabled).
    fn delete_manifest(&self, registry: &str, repository: &str, digest: &Digest) {
        let req = Req {
            method: http::Method::DELETE,
            registry,
            repository: Some(repository),
            action: Action::Push,
            path: format!("/v2/{repository}/manifests/{digest}"),
            headers: vec![],
            body: ReqBody::Empty,
            follow_redirects: false,
        };
        let _ = self.send(&req);
    }
}
