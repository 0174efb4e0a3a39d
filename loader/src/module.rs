//! [`Module`]: a loaded artifact with its code mapped executable.
//!
//! **Safe loads** ([`Module::from_file`], [`Module::from_bytes`], checked
//! against the engine's [`TrustPolicy`], see [`crate::Config::trust`]) never
//! execute from memory someone else can change: they copy the artifact into
//! private memory, its `.wasmc.data` into a sealed memfd
//! (`vm::sys::sealed`), and then, in this order, before any page is executable:
//! 1. parse it and validate every table the runtime relies on
//!    ([`ParsedArtifact::parse`]: function records, stack maps,
//!    trampolines, the trap table's block index, and
//!    [`ParsedArtifact::validate_trap_entries`]: every trap entry; sorted,
//!    inside `.text`, in range; address-map entries, read only for
//!    backtraces, are bounds-checked when read);
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
//! with the code size. Steps 1 and 2 still run (O(table size)), but for the
//! trap entries, of which only the block index is checked (O(entries / 64);
//! the caller vouches for the file).
//!
//! **Memory images** (a module's initial memory contents, laid out by the
//! compiler in `.wasmc.data`) are mapped copy-on-write into each new
//! instance's memories from the same image: the sealed memfd on the safe
//! paths, the file itself on the trusted path
//! (`vm::code::RuntimeModule::memory_image_source`).
//! No change to the file can reach a memory of a safely loaded module.

use crate::artifact::{check_host, func_table_limits, segment_limits, ParsedArtifact};
use crate::engine::Engine;
use crate::error::LoadError;
use crate::trust::TrustPolicy;
use crate::types::{ExportType, ExternType, ImportType};
use crate::vm::code::{CodeRanges, Image, RuntimeModule};
use std::path::Path;
use std::sync::Arc;
use wasmc_format::funcs::FuncTable;
use wasmc_format::{ArtifactHeader, ExternKind, FuncType, ImportType as WireImport, ModuleInfo};

/// A compiled module, loaded and ready to instantiate. Cheap to clone
/// (reference counted) and shareable between threads and stores of its
/// engine.
///
/// ```
/// use wasmc_loader::{Engine, Instance, Module, Store};
/// # let artifact = wasmc_compiler::compile(br#"(module (func (export "answer") (result i32) i32.const 42))"#, &Default::default()).unwrap();
/// let engine = Engine::default();
/// let module = Module::from_bytes(&engine, &artifact)?;
/// let mut store = Store::new(&engine, ());
/// let instance = Instance::new(&mut store, &module, &[])?;
/// let answer = instance.get_typed_func::<(), i32>(&mut store, "answer")?;
/// assert_eq!(answer.call(&mut store, ())?, 42);
/// # Ok::<(), wasmc_loader::Error>(())
/// ```
#[derive(Clone)]
pub struct Module {
    inner: Arc<RuntimeModule>,
    engine: Engine,
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
    /// Loads the artifact at `path` from a private, sealed copy, checking it
    /// against the engine's trust policy ([`crate::Config::trust`]; by
    /// default: content hash checked, signatures optional) before any code
    /// is executable (see the module docs). The file may change or disappear
    /// afterwards without affecting the module.
    pub fn from_file(engine: &Engine, path: impl AsRef<Path>) -> Result<Module, LoadError> {
        let path = path.as_ref();
        let file = open(path)?;
        let image = Image::copy_of_file(&file).map_err(|error| LoadError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_image(engine, image, Some(&engine.config().trust))
    }

    /// Loads an artifact from bytes (copied into a sealed image), checking
    /// it against the engine's trust policy before any code is executable.
    pub fn from_bytes(engine: &Engine, bytes: &[u8]) -> Result<Module, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Elf("empty input".into()));
        }
        Self::from_image(
            engine,
            Image::copy_of(bytes).map_err(LoadError::Mmap)?,
            Some(&engine.config().trust),
        )
    }

    /// Loads the artifact at `path` by mapping the file itself: `.text`
    /// pages are shared with the page cache, and neither the content hash
    /// nor a signature is checked, whatever the engine's trust policy says
    /// (the cost does not grow with code size). The tables the runtime
    /// reads, the memory strategy and the host fit are still checked.
    ///
    /// # Safety
    /// The caller guarantees that the file is trusted, i.e. written by the
    /// wasmc compiler from the intended module and not altered (machine code
    /// is not checked at all), and that it is not modified, truncated or
    /// replaced in place while the module or anything made from it is alive
    /// (a change is seen by the running code; a truncation makes it fault
    /// with `SIGBUS`). Replacing it by renaming a new file over it is fine.
    pub unsafe fn from_file_unchecked(
        engine: &Engine,
        path: impl AsRef<Path>,
    ) -> Result<Module, LoadError> {
        let path = path.as_ref();
        let file = open(path)?;
        // SAFETY: the file is trusted and not modified while mapped: this
        // function's own contract, passed on to its caller.
        let image = unsafe { Image::map_file(&file) }.map_err(|error| LoadError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_image(engine, image, None)
    }

    /// Checks `image` (module docs) and makes its code executable; `policy`
    /// `None` is the trusted path.
    fn from_image(
        engine: &Engine,
        image: Image,
        policy: Option<&TrustPolicy>,
    ) -> Result<Module, LoadError> {
        let parsed = ParsedArtifact::parse(image.bytes())?;
        parsed.check_relocations()?;
        parsed.check_sandbox()?;
        let mismatches = check_host(parsed.header());
        if !mismatches.is_empty() {
            return Err(LoadError::Incompatible(mismatches));
        }
        if let Some(policy) = policy {
            // The safe paths pay O(file size) for the copy and the hash
            // anyway; every trap entry is checked too (about 4% of that
            // for esbuild.wasm's 0.66 million entries), so a damaged entry
            // is refused here rather than found by the trap handler.
            parsed.validate_trap_entries()?;
            policy.check(&parsed)?;
        }
        let (header, info, r) = parsed.into_parts();
        let func_limits = func_table_limits(&info, &r);
        let seg_limits = segment_limits(&info, &r);
        let ranges = CodeRanges {
            text: r.text,
            funcs: r.funcs,
            names: r.names,
            traps: r.traps,
            stackmaps: r.stackmaps,
            addrmap: r.addrmap,
            segments: r.segments,
            data: r.data,
        };
        let inner = RuntimeModule::new(image, header, info, ranges, func_limits, seg_limits)
            .map_err(LoadError::Mmap)?;
        Ok(Module {
            inner,
            engine: engine.clone(),
        })
    }

    pub(crate) fn runtime(&self) -> &Arc<RuntimeModule> {
        &self.inner
    }

    pub(crate) fn from_runtime(engine: Engine, inner: Arc<RuntimeModule>) -> Module {
        Module { inner, engine }
    }

    /// The engine the module was loaded with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The type of function `index` (imports first), `None` if the
    /// artifact's metadata does not give one.
    fn func_type(&self, index: u32) -> Option<FuncType> {
        let t = self.funcs().type_index(index).ok()?;
        self.info().types.get(t as usize).cloned()
    }

    /// The module's imports, in order, with their types. An import whose
    /// function type index is out of range (a malformed artifact; loading
    /// checks them) is left out.
    pub fn imports(&self) -> Vec<ImportType> {
        let info = self.info();
        info.imports
            .iter()
            .filter_map(|i| {
                let ty = match &i.ty {
                    WireImport::Func(t) => ExternType::Func(info.types.get(*t as usize)?.clone()),
                    WireImport::Table(t) => ExternType::Table(*t),
                    WireImport::Memory(m) => ExternType::Memory(*m),
                    WireImport::Global(g) => ExternType::Global(*g),
                };
                Some(ImportType {
                    module: i.module.clone(),
                    name: i.field.clone(),
                    ty,
                })
            })
            .collect()
    }

    /// The module's exports, in order, with their types. An export whose
    /// index is out of range (a malformed artifact) is left out.
    pub fn exports(&self) -> Vec<ExportType> {
        let info = self.info();
        info.exports
            .iter()
            .filter_map(|e| {
                let i = e.index as usize;
                let ty = match e.kind {
                    ExternKind::Func => ExternType::Func(self.func_type(e.index)?),
                    ExternKind::Table => ExternType::Table(*info.tables.get(i)?),
                    ExternKind::Memory => ExternType::Memory(*info.memories.get(i)?),
                    ExternKind::Global => ExternType::Global(info.globals.get(i)?.ty),
                };
                Some(ExportType {
                    name: e.name.clone(),
                    ty,
                })
            })
            .collect()
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
    let io = |error| LoadError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() == 0 {
        return Err(LoadError::Elf("empty file".into()));
    }
    Ok(file)
}
