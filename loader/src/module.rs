//! [`Module`]: a loaded artifact with its code mapped executable.
//!
//! **Safe loads** ([`Module::from_file`], [`Module::from_bytes`] and their
//! `_with` forms that take a [`TrustPolicy`]) never execute from memory
//! someone else can change: they copy the artifact into a sealed memfd
//! (`vm::sys::sealed`; an anonymous copy where memfds are unavailable) and
//! then, in this order, before any page is executable:
//! 1. parse it and validate every table the runtime reads
//!    ([`ParsedArtifact::parse`]: function records, trap table, stack maps,
//!    address map, trampolines; sorted, inside `.text`, in range);
//! 2. refuse relocations, a memory strategy or sizes the loader does not
//!    provide ([`ParsedArtifact::check_sandbox`]), and a host mismatch;
//! 3. check integrity and authenticity per the trust policy (content hash;
//!    or an Ed25519 signature by a trusted key over the whole file).
//!
//! Only then does the runtime (`vm::code::RuntimeModule`) make `.text`
//! read+execute and register it for trap handling until the last clone of
//! the `Module` drops. Cost: one copy and one hash pass over the file
//! (figures in `docs/trust.md`).
//!
//! **The trusted path** ([`Module::from_file_unchecked`], `unsafe`) maps the
//! file itself, so clean `.text` pages are shared with the page cache and
//! other processes, and skips the hash and signature: its cost does not grow
//! with the code size. Steps 1 and 2 still run (they are O(table size)).

use crate::artifact::{check_host, func_table_limits, ParsedArtifact};
use crate::error::LoadError;
use crate::trust::TrustPolicy;
use crate::vm::code::{CodeRanges, Image, RuntimeModule};
use std::path::Path;
use std::sync::Arc;
use wasmc_format::funcs::FuncTable;
use wasmc_format::{ArtifactHeader, ModuleInfo};

/// A compiled module, loaded and ready to instantiate. Cheap to clone
/// (reference counted) and shareable between threads and stores.
#[derive(Clone)]
pub struct Module {
    inner: Arc<RuntimeModule>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.inner.info().name)
            .field("text", &self.inner.text_range())
            .finish()
    }
}

impl Module {
    /// Loads the artifact at `path` with the default [`TrustPolicy`]
    /// (content hash checked, signatures optional); see the module docs.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Module, LoadError> {
        Self::from_file_with(path, &TrustPolicy::default())
    }

    /// Loads the artifact at `path` from a private, sealed copy, checking it
    /// against `policy` before any code is executable (module docs). The
    /// file may change or disappear afterwards without affecting the module.
    pub fn from_file_with(
        path: impl AsRef<Path>,
        policy: &TrustPolicy,
    ) -> Result<Module, LoadError> {
        let path = path.as_ref();
        let file = open(path)?;
        let image = Image::copy_of_file(&file).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_image(image, Some(policy))
    }

    /// Loads an artifact from bytes with the default [`TrustPolicy`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Module, LoadError> {
        Self::from_bytes_with(bytes, &TrustPolicy::default())
    }

    /// Loads an artifact from bytes (copied into a sealed image), checking
    /// it against `policy` before any code is executable.
    pub fn from_bytes_with(bytes: &[u8], policy: &TrustPolicy) -> Result<Module, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Elf("empty input".into()));
        }
        Self::from_image(
            Image::copy_of(bytes).map_err(LoadError::Mmap)?,
            Some(policy),
        )
    }

    /// Loads the artifact at `path` by mapping the file itself: `.text`
    /// pages are shared with the page cache, and neither the content hash
    /// nor a signature is checked (the cost does not grow with code size).
    /// The tables the runtime reads and the memory strategy are still
    /// checked.
    ///
    /// # Safety
    /// The caller guarantees that the file is trusted, i.e. written by the
    /// wasmc compiler from the intended module and not altered (machine code
    /// is not checked at all), and that it is not modified, truncated or
    /// replaced in place while the module or anything made from it is alive
    /// (a change is seen by the running code; a truncation makes it fault
    /// with `SIGBUS`). Replacing it by renaming a new file over it is fine.
    pub unsafe fn from_file_unchecked(path: impl AsRef<Path>) -> Result<Module, LoadError> {
        let path = path.as_ref();
        let file = open(path)?;
        // SAFETY: the file is trusted and not modified while mapped: this
        // function's own contract, passed on to its caller.
        let image = unsafe { Image::map_file(&file) }.map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_image(image, None)
    }

    /// Checks `image` (module docs) and makes its code executable; `policy`
    /// `None` is the trusted path.
    fn from_image(image: Image, policy: Option<&TrustPolicy>) -> Result<Module, LoadError> {
        let parsed = ParsedArtifact::parse(image.bytes())?;
        parsed.check_relocations()?;
        parsed.check_sandbox()?;
        let mismatches = check_host(parsed.header());
        if !mismatches.is_empty() {
            return Err(LoadError::Incompatible(mismatches));
        }
        if let Some(policy) = policy {
            policy.check(&parsed)?;
        }
        let (header, info, r) = parsed.into_parts();
        let func_limits = func_table_limits(&info, &r);
        let ranges = CodeRanges {
            text: r.text,
            funcs: r.funcs,
            names: r.names,
            traps: r.traps,
            stackmaps: r.stackmaps,
            addrmap: r.addrmap,
            data: r.data,
        };
        let inner = RuntimeModule::new(image, header, info, ranges, func_limits)
            .map_err(LoadError::Mmap)?;
        Ok(Module { inner })
    }

    pub(crate) fn runtime(&self) -> &Arc<RuntimeModule> {
        &self.inner
    }

    pub(crate) fn from_runtime(inner: Arc<RuntimeModule>) -> Module {
        Module { inner }
    }

    /// The module's metadata.
    pub fn info(&self) -> &ModuleInfo {
        self.inner.info()
    }

    /// The artifact header.
    pub fn header(&self) -> &ArtifactHeader {
        self.inner.header()
    }

    /// The module's name from the name section.
    pub fn name(&self) -> Option<&str> {
        self.inner.info().name.as_deref()
    }

    /// Recomputes the artifact's content hash and compares it with the
    /// header. The safe loading functions already did (or verified a
    /// signature); this is for modules from [`Module::from_file_unchecked`].
    pub fn verify_content_hash(&self) -> Result<(), LoadError> {
        ParsedArtifact::parse(self.inner.image_bytes())?.verify_content_hash()
    }

    /// The function records (`.wasmc.funcs`), read in place; each record
    /// is checked when read.
    pub fn funcs(&self) -> FuncTable<'_> {
        self.inner.funcs()
    }

    /// The name of function `index` from the name section, if it has one
    /// (`None` also for a malformed name entry).
    pub fn func_name(&self, index: u32) -> Option<&str> {
        self.inner.func_name(index)
    }
}

/// Opens an artifact file, refusing an empty one.
fn open(path: &Path) -> Result<std::fs::File, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() == 0 {
        return Err(LoadError::Elf("empty file".into()));
    }
    Ok(file)
}
