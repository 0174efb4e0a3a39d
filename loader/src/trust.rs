//! [`TrustPolicy`]: which artifacts the safe loading functions accept.
//!
//! Every safe load verifies integrity before any page is executable (see
//! [`crate::Module`]); the policy adds authenticity: the Ed25519 public keys
//! whose signatures ([`wasmc_format::signature`]) are accepted, and whether
//! an artifact must carry one. The default accepts unsigned artifacts whose
//! content hash matches, which catches damage but not an attacker who can
//! recompute the hash: services that load artifacts from places others can
//! write should trust a key and require signatures.
//!
//! Decisions, in order:
//! 1. A signature by a trusted key is verified over the whole file; a bad
//!    one is refused ("signature by key ... does not verify"). A good one
//!    makes the file exactly what the key holder signed.
//! 2. Otherwise, when signatures are required, the artifact is refused,
//!    naming why: unsigned, or signed by a key that is not trusted.
//! 3. Otherwise the content hash is checked.

use crate::artifact::ParsedArtifact;
use crate::error::LoadError;
use ed25519_dalek::{Signature, VerifyingKey};
use wasmc_format::sections::SectionId;
use wasmc_format::signature::{file_digest, key_id, signed_message, SignatureSlot};

/// First line of a public key file written by `wasmc keygen`.
pub const PUBLIC_KEY_HEADER: &str = "wasmc-ed25519-public-key";

/// What a safe load accepts (see the module docs). The default: content
/// hash checked, signatures optional, no trusted keys.
#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    keys: Vec<VerifyingKey>,
    require_signature: bool,
}

/// How an artifact passed [`TrustPolicy::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Signed by the trusted key with this id; verified over the whole file.
    Signature {
        /// [`wasmc_format::signature::key_id`] of the signer.
        key_id: String,
    },
    /// Its content hash matches (no signature by a trusted key).
    ContentHash,
}

impl TrustPolicy {
    /// The default policy (see the type docs).
    pub fn new() -> TrustPolicy {
        TrustPolicy::default()
    }

    /// Accepts signatures by the Ed25519 public key `key` (32 bytes).
    pub fn trust_key(&mut self, key: [u8; 32]) -> Result<&mut Self, LoadError> {
        let k = VerifyingKey::from_bytes(&key)
            .map_err(|_| LoadError::Trust("not a valid Ed25519 public key".into()))?;
        self.keys.push(k);
        Ok(self)
    }

    /// Accepts signatures by the key in a public key file written by
    /// `wasmc keygen` (see [`parse_public_key`]).
    pub fn trust_key_file(&mut self, text: &str) -> Result<&mut Self, LoadError> {
        let key = parse_public_key(text)?;
        self.trust_key(key)
    }

    /// Whether every artifact must carry a valid signature by a trusted key.
    pub fn require_signature(&mut self, yes: bool) -> &mut Self {
        self.require_signature = yes;
        self
    }

    /// Whether signatures are required.
    pub fn requires_signature(&self) -> bool {
        self.require_signature
    }

    /// Checks `artifact` against this policy (module docs). Reads the whole
    /// file once (signature) or every hashed section once (content hash).
    pub fn check(&self, artifact: &ParsedArtifact<'_>) -> Result<Verified, LoadError> {
        if self.require_signature && self.keys.is_empty() {
            return Err(LoadError::Trust(
                "the trust policy requires signatures but trusts no key".into(),
            ));
        }
        let sig_range = artifact.ranges().sig.clone();
        let slot = SignatureSlot::parse(&artifact.bytes()[sig_range.clone()])?;
        if let Some(slot) = slot {
            if let Some(key) = self.keys.iter().find(|k| k.as_bytes() == &slot.public_key) {
                let digest = file_digest(artifact.bytes(), sig_range);
                let sig = Signature::from_bytes(&slot.signature);
                return match key.verify_strict(&signed_message(&digest), &sig) {
                    Ok(()) => Ok(Verified::Signature {
                        key_id: slot.key_id(),
                    }),
                    Err(_) => Err(LoadError::BadSignature {
                        key_id: slot.key_id(),
                    }),
                };
            }
            if self.require_signature {
                return Err(LoadError::UntrustedSigner {
                    key_id: slot.key_id(),
                });
            }
        } else if self.require_signature {
            return Err(LoadError::Unsigned);
        }
        artifact.verify_content_hash()?;
        Ok(Verified::ContentHash)
    }
}

/// Whether `artifact` carries a signature, and by which key id.
pub fn signer(artifact: &ParsedArtifact<'_>) -> Result<Option<String>, LoadError> {
    Ok(SignatureSlot::parse(artifact.section(SectionId::Sig))?.map(|s| s.key_id()))
}

/// Reads a public key file: the line [`PUBLIC_KEY_HEADER`] (optionally
/// followed by the key id), then the 32-byte key in hex. Blank lines and
/// surrounding whitespace are ignored.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], LoadError> {
    let bad = |d: &str| LoadError::Trust(format!("not a wasmc public key file: {d}"));
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let head = lines.next().ok_or_else(|| bad("empty"))?;
    if head.split_whitespace().next() != Some(PUBLIC_KEY_HEADER) {
        return Err(bad(&format!("first line is not `{PUBLIC_KEY_HEADER}`")));
    }
    let hex = lines.next().ok_or_else(|| bad("no key line"))?;
    let key = decode_hex32(hex).ok_or_else(|| bad("the key is not 64 hex digits"))?;
    Ok(key)
}

/// Writes a public key file for `key` (see [`parse_public_key`]).
pub fn format_public_key(key: &[u8; 32]) -> String {
    format!(
        "{PUBLIC_KEY_HEADER} {}\n{}\n",
        key_id(key),
        key.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// 64 hex digits as 32 bytes.
pub fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_files_round_trip() {
        let key = [0x11; 32];
        let text = format_public_key(&key);
        assert!(text.starts_with(PUBLIC_KEY_HEADER));
        assert_eq!(parse_public_key(&text).unwrap(), key);
        assert!(parse_public_key("").is_err());
        assert!(parse_public_key("wasmc-ed25519-public-key\nzz").is_err());
        assert!(parse_public_key("other\n").is_err());
    }
}
