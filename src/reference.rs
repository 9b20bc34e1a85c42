//! TEMPORARY stub, replaced by the real parser.
use crate::digest::Digest;
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference { registry: String, repository: String, tag: Option<String>, digest: Option<Digest> }
impl Reference {
    pub fn parse(s: &str) -> Result<Reference, String> {
        let (rest, digest) = match s.split_once('@') { Some((a, d)) => (a, Some(Digest::parse(d).map_err(|e| e.to_string())?)), None => (s, None) };
        let (name, tag) = match rest.rfind(':') { Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i+1..].to_string())), _ => (rest, None) };
        let (registry, repository) = match name.split_once('/') { Some((h, r)) if h.contains(['.', ':']) || h == "localhost" => (h.to_string(), r.to_string()), _ => ("docker.io".to_string(), if name.contains('/') { name.to_string() } else { format!("library/{name}") }) };
        let tag = if tag.is_none() && digest.is_none() { Some("latest".into()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }
    pub fn registry(&self) -> &str { &self.registry }
    pub fn repository(&self) -> &str { &self.repository }
    pub fn tag(&self) -> Option<&str> { self.tag.as_deref() }
    pub fn digest(&self) -> Option<&Digest> { self.digest.as_ref() }
    pub fn manifest_ref(&self) -> String { match &self.digest { Some(d) => d.to_string(), None => self.tag.clone().unwrap_or_default() } }
    pub fn with_digest(&self, d: Digest) -> Reference { let mut r = self.clone(); r.digest = Some(d); r }
}
impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag { write!(f, ":{t}")?; }
        if let Some(d) = &self.digest { write!(f, "@{d}")?; }
        Ok(())
    }
}
