//! Artifact signing for `wasmc keygen`, `wasmc sign` and `wasmc compile
//! --sign`: Ed25519 key files and filling an artifact's `.wasmc.sig` slot.
//!
//! Key files are text: a first line naming the kind, then the 32-byte key in
//! hex. The secret key file holds the Ed25519 seed and is created mode 0600;
//! the public key file (`KEY.pub`) is the loader's format
//! ([`wasmc_loader::trust::parse_public_key`]), with the key id on its first
//! line.

use anyhow::{bail, Context, Result};
use ed25519_dalek::{Signer, SigningKey};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmc_format::signature::{file_digest, signed_message, SignatureSlot};
use wasmc_loader::artifact::ParsedArtifact;
use wasmc_loader::trust::{decode_hex32, format_public_key};

/// First line of a secret key file.
pub const SECRET_KEY_HEADER: &str = "wasmc-ed25519-secret-key";

/// The public key file next to secret key file `key`: `KEY.pub`.
pub fn public_key_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Creates a new key pair: the secret key at `out` (mode 0600, refusing to
/// overwrite) and the public key at `out.pub`. Returns the key id.
pub fn keygen(out: &Path) -> Result<String> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
        .context("reading /dev/urandom")?;
    let key = SigningKey::from_bytes(&seed);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(out)
        .with_context(|| format!("creating {} (it must not exist)", out.display()))?;
    writeln!(f, "{SECRET_KEY_HEADER}\n{}", hex(&seed))
        .with_context(|| format!("writing {}", out.display()))?;
    let public = key.verifying_key().to_bytes();
    let pub_path = public_key_path(out);
    std::fs::write(&pub_path, format_public_key(&public))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    Ok(wasmc_format::signature::key_id(&public))
}

/// Reads a secret key file written by [`keygen`].
pub fn read_secret_key(path: &Path) -> Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(SECRET_KEY_HEADER) {
        bail!(
            "{} is not a wasmc secret key file (first line is not `{SECRET_KEY_HEADER}`)",
            path.display()
        );
    }
    let seed = lines
        .next()
        .and_then(decode_hex32)
        .with_context(|| format!("{}: the key is not 64 hex digits", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs `artifact` in place: fills its `.wasmc.sig` slot with `key`'s
/// signature over the whole file (any previous signature is replaced). No
/// other byte changes, and the result is deterministic. Refuses an artifact
/// that is damaged (content hash mismatch) or has no signature slot.
pub fn sign_artifact(artifact: &mut [u8], key: &SigningKey) -> Result<String> {
    let parsed = ParsedArtifact::parse(artifact).context("not a loadable wasmc artifact")?;
    parsed
        .verify_content_hash()
        .context("refusing to sign a damaged artifact")?;
    let sig = parsed.ranges().sig.clone();
    if sig.is_empty() {
        bail!("the artifact has no `.wasmc.sig` slot (written by an older wasmc?); recompile it");
    }
    let digest = file_digest(artifact, sig.clone());
    let slot = SignatureSlot {
        public_key: key.verifying_key().to_bytes(),
        signature: key.sign(&signed_message(&digest)).to_bytes(),
    };
    artifact[sig].copy_from_slice(&slot.encode());
    Ok(slot.key_id())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
