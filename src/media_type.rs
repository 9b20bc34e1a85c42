//! Media types of the manifests airlock moves: OCI and Docker v2, and the ones it refuses.
//!
//! See the OCI image-spec "Media Types" (<https://github.com/opencontainers/image-spec/blob/main/media-types.md>)
//! and Docker's "Image Manifest V2, Schema 2". A Docker schema2 manifest keeps the type it was
//! served with, so its digest never changes; OCI and schema 1 manifests are converted to Docker
//! types unless `--keep-digests` is given (see the `convert` module).

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI non-distributable gzip layer (deprecated in image-spec 1.1, still served).
pub const OCI_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// Docker manifest list (multi-arch).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker foreign (non-distributable) gzip layer.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema 1, unsigned. Its digest is the sha256 of the document.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1, signed (a JWS): its digest covers the JWS payload, not the signatures
/// (see `convert::schema1`).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The Accept header for manifest requests: every type airlock can read, index types first,
/// schema 1 last (a registry that holds a schema 2 manifest serves that, and one that only
/// holds schema 1, such as `pause-amd64:3.0` on registry.k8s.io, serves schema 1 instead of
/// `MANIFEST_UNKNOWN`).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/vnd.docker.distribution.manifest.v1+json";

/// The Accept header Docker 1.12–17.03 sends (moby v17.03 `distribution/registry.go`, with
/// schema 1 allowed): what a pull by a Rancher 1.6 host asks for.
pub const DOCKER_17_03_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/json";

/// What a manifest media type stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image index or Docker manifest list: points at platform manifests.
    Index,
    /// A single-platform image manifest: points at a config and layers.
    Manifest,
    /// Docker schema 1 (signed or not).
    Schema1,
    /// Anything else.
    Unknown,
}

/// Classifies a manifest media type (parameters such as `; charset=utf-8` are ignored).
pub fn kind(media_type: &str) -> Kind {
    match essence(media_type) {
        OCI_INDEX | DOCKER_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Kind::Schema1,
        _ => Kind::Unknown,
    }
}

/// The media type without parameters or surrounding spaces.
pub fn essence(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or("").trim()
}

/// True for the Docker (not OCI) manifest types, which skopeo 1.9 will not read from a layout.
pub fn is_docker(media_type: &str) -> bool {
    matches!(essence(media_type), DOCKER_LIST | DOCKER_MANIFEST)
}

/// True for the manifest types Docker 1.12–17.03 pulls: schema 2, manifest list, schema 1.
pub fn docker_pullable(media_type: &str) -> bool {
    matches!(
        essence(media_type),
        DOCKER_LIST | DOCKER_MANIFEST | DOCKER_SCHEMA1_SIGNED | DOCKER_SCHEMA1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(kind(OCI_INDEX), Kind::Index);
        assert_eq!(kind(DOCKER_LIST), Kind::Index);
        assert_eq!(kind(OCI_MANIFEST), Kind::Manifest);
        assert_eq!(
            kind("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
            Kind::Manifest
        );
        assert_eq!(kind(DOCKER_SCHEMA1_SIGNED), Kind::Schema1);
        assert_eq!(kind("text/html"), Kind::Unknown);
        assert!(is_docker(DOCKER_MANIFEST));
        assert!(!is_docker(OCI_MANIFEST));
    }
}
