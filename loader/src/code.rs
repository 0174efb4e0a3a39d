//! [`Module`]: a loaded artifact with its code mapped executable, and the
//! process-wide registry of code ranges that trap handling and backtraces use
//! to map a PC back to its module.
//!
//! `from_file` maps the file privately and read-only, then makes the pages of
//! `.text` read+execute (nothing in `.text` is patched, so its pages stay
//! clean). `from_bytes` copies into an anonymous mapping first. Each loaded
//! `.text` is registered as `[start, end) -> module` until the last clone of
//! the `Module` drops.

use crate::artifact::{check_host, ParsedArtifact, SectionRanges};
use crate::error::LoadError;
use crate::sys::mmap::{page_size, Mmap};
use crate::trap::FrameInfo;
use crate::vmcontext::VMExternData;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use wasmc_format::addrmap::AddrMap;
use wasmc_format::funcs::{FuncTable, FuncTableLimits, NameTable};
use wasmc_format::stack_map::{StackMap, StackMapSection};
use wasmc_format::trap::TrapTable;
use wasmc_format::{ArtifactHeader, FuncType, MemoryStrategy, ModuleInfo, TrapCode, VMOffsets};

enum Image {
    File(memmap2::Mmap),
    /// A copy of the bytes given to `from_bytes`, and their length: the
    /// mapping is rounded up to whole pages, and the zeros after the input
    /// must not be parsed as part of it (a truncated artifact would load).
    Anon(Mmap, usize),
}

impl Image {
    fn bytes(&self) -> &[u8] {
        match self {
            Image::File(m) => m,
            // SAFETY: the whole anonymous mapping is readable (read-only or
            // read+execute) and owned by this image; `len <= m.len()`.
            Image::Anon(m, len) => unsafe { std::slice::from_raw_parts(m.as_ptr(), *len) },
        }
    }
}

pub(crate) struct ModuleInner {
    image: Image,
    header: ArtifactHeader,
    info: ModuleInfo,
    ranges: SectionRanges,
    func_limits: FuncTableLimits,
    offsets: VMOffsets,
    type_ids: Vec<u32>,
    /// The types, shared with the store's functions of each type.
    func_types: Vec<Arc<FuncType>>,
    registered: bool,
}

/// A compiled module, loaded and ready to instantiate. Cheap to clone
/// (reference counted) and shareable between threads and stores.
#[derive(Clone)]
pub struct Module {
    inner: Arc<ModuleInner>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.inner.info.name)
            .field("text", &self.text_range())
            .finish()
    }
}

impl Module {
    /// Loads the artifact at `path`: parses and validates it, checks it
    /// against this host, and maps its code executable.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Module, LoadError> {
        let path = path.as_ref();
        let io = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            return Err(LoadError::Elf("empty file".into()));
        }
        // SAFETY: a private mapping; the DESIGN requires that an artifact file
        // is not modified while in use (loaded from files the service owns).
        let map = unsafe { memmap2::MmapOptions::new().map_copy_read_only(&file) }.map_err(io)?;
        Self::from_image(Image::File(map))
    }

    /// Loads an artifact from bytes (copied into a fresh mapping).
    pub fn from_bytes(bytes: &[u8]) -> Result<Module, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Elf("empty input".into()));
        }
        let mut map = Mmap::read_write(bytes.len()).map_err(LoadError::Mmap)?;
        // SAFETY: the mapping is at least bytes.len() long, read-write, and
        // freshly created, so it does not overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_ptr(), bytes.len()) };
        let len = map.len();
        map.make_read_only(0, len).map_err(LoadError::Mmap)?;
        Self::from_image(Image::Anon(map, bytes.len()))
    }

    fn from_image(mut image: Image) -> Result<Module, LoadError> {
        let parsed = ParsedArtifact::parse(image.bytes())?;
        parsed.check_relocations()?;
        let mismatches = check_host(parsed.header());
        if !mismatches.is_empty() {
            return Err(LoadError::Incompatible(mismatches));
        }
        let (header, info, ranges) = parsed.into_parts();
        let func_limits = crate::artifact::func_table_limits(&info, &ranges);
        let offsets = VMOffsets::for_module(std::mem::size_of::<usize>() as u8, &info);
        let type_ids = info.types.iter().map(crate::types::intern).collect();
        let func_types = info.types.iter().cloned().map(Arc::new).collect();

        let text = ranges.text.clone();
        if !text.is_empty() {
            debug_assert_eq!(text.start % page_size(), 0);
            match &mut image {
                Image::File(m) => {
                    let len = text.len();
                    // SAFETY: `text` lies inside the mapping (checked by the
                    // parser) and starts on a page boundary; the mapping is
                    // private, so changing its protection affects no one else.
                    let r = unsafe {
                        libc::mprotect(
                            m.as_ptr().add(text.start) as *mut libc::c_void,
                            len,
                            libc::PROT_READ | libc::PROT_EXEC,
                        )
                    };
                    if r != 0 {
                        return Err(LoadError::Mmap(std::io::Error::last_os_error()));
                    }
                }
                Image::Anon(m, _) => m
                    .make_executable(text.start, text.len())
                    .map_err(LoadError::Mmap)?,
            }
        }
        let mut inner = Arc::new(ModuleInner {
            image,
            header,
            info,
            ranges,
            func_limits,
            offsets,
            type_ids,
            func_types,
            registered: false,
        });
        if !text.is_empty() {
            register(&inner);
            Arc::get_mut(&mut inner)
                .expect("module not yet shared")
                .registered = true;
        }
        Ok(Module { inner })
    }

    /// The module's metadata.
    pub fn info(&self) -> &ModuleInfo {
        &self.inner.info
    }

    /// The artifact header.
    pub fn header(&self) -> &ArtifactHeader {
        &self.inner.header
    }

    /// The module's name from the name section.
    pub fn name(&self) -> Option<&str> {
        self.inner.info.name.as_deref()
    }

    /// Recomputes the artifact's content hash and compares it with the header.
    pub fn verify_content_hash(&self) -> Result<(), LoadError> {
        ParsedArtifact::parse(self.inner.image.bytes())?.verify_content_hash()
    }

    pub(crate) fn same(a: &Module, b: &Module) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    pub(crate) fn offsets(&self) -> &VMOffsets {
        &self.inner.offsets
    }

    pub(crate) fn memory_strategy(&self) -> MemoryStrategy {
        self.inner.header.settings.memory
    }

    /// Canonical type id of type index `t` (validated index).
    pub(crate) fn type_id(&self, t: u32) -> u32 {
        self.inner.type_ids[t as usize]
    }

    /// Type index `t` (validated index), shared.
    pub(crate) fn func_type(&self, t: u32) -> &Arc<FuncType> {
        &self.inner.func_types[t as usize]
    }

    pub(crate) fn type_ids(&self) -> &[u32] {
        &self.inner.type_ids
    }

    fn text_range(&self) -> std::ops::Range<usize> {
        self.inner.text_range()
    }

    /// Address of `.text` offset `off` (validated by `ModuleInfo::validate`).
    pub(crate) fn text_addr(&self, off: u32) -> *const u8 {
        (self.text_range().start + off as usize) as *const u8
    }

    /// Entry trampoline of type `t`.
    pub(crate) fn entry_trampoline(&self, t: u32) -> *const u8 {
        self.text_addr(self.inner.info.trampolines[t as usize].entry.offset)
    }

    /// Wasm-to-host trampoline of type `t`.
    pub(crate) fn host_trampoline(&self, t: u32) -> *const u8 {
        self.text_addr(self.inner.info.trampolines[t as usize].host.offset)
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

    /// `.wasmc.data`.
    pub(crate) fn data_section(&self) -> &[u8] {
        &self.inner.image.bytes()[self.inner.ranges.data.clone()]
    }
}

impl ModuleInner {
    fn text_range(&self) -> std::ops::Range<usize> {
        let base = self.image.bytes().as_ptr() as usize;
        base + self.ranges.text.start..base + self.ranges.text.end
    }

    fn section(&self, r: &std::ops::Range<usize>) -> &[u8] {
        &self.image.bytes()[r.clone()]
    }

    fn funcs(&self) -> FuncTable<'_> {
        // It parsed when the module was loaded; if the mapped file was
        // changed since (DESIGN forbids it), every read fails instead.
        FuncTable::parse(self.section(&self.ranges.funcs), self.func_limits)
            .unwrap_or_else(|_| FuncTable::empty(self.func_limits))
    }

    fn func_name(&self, index: u32) -> Option<&str> {
        NameTable::parse(self.section(&self.ranges.names), self.info.num_funcs)
            .ok()?
            .get(index)
            .ok()
            .flatten()
    }

    fn trap_code(&self, off: u32) -> Option<TrapCode> {
        let t = TrapTable::parse(self.section(&self.ranges.traps)).ok()?;
        t.lookup(off).ok().flatten()
    }

    fn frame_info(&self, off: u32) -> Option<FrameInfo> {
        let func_index = self.funcs().func_at(off)?;
        let wasm_offset = AddrMap::parse(self.section(&self.ranges.addrmap))
            .ok()
            .and_then(|m| m.lookup(off));
        Some(FrameInfo {
            func_index,
            func_name: self.func_name(func_index).map(str::to_string),
            module_name: self.info.name.clone(),
            wasm_offset,
        })
    }

    /// The stack map keyed by exactly `ret_off`: `Ok(None)` if that safepoint
    /// holds no references, `Err` if the section is malformed.
    fn stack_map(&self, ret_off: u32) -> Result<Option<StackMap<'_>>, ()> {
        let s = StackMapSection::parse(self.section(&self.ranges.stackmaps)).map_err(|_| ())?;
        s.lookup(ret_off).map_err(|_| ())
    }
}

impl Drop for ModuleInner {
    fn drop(&mut self) {
        if self.registered {
            unregister(self.text_range().start);
        }
    }
}

// ----- the global code registry -----

struct Entry {
    end: usize,
    module: *const ModuleInner,
}

// SAFETY: the pointer is only dereferenced while the entry is registered, and
// ModuleInner unregisters itself before it is freed; ModuleInner is Sync.
unsafe impl Send for Entry {}
// SAFETY: as above.
unsafe impl Sync for Entry {}

static REGISTRY: RwLock<BTreeMap<usize, Entry>> = RwLock::new(BTreeMap::new());

fn register(m: &Arc<ModuleInner>) {
    let r = m.text_range();
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    reg.insert(
        r.start,
        Entry {
            end: r.end,
            module: Arc::as_ptr(m),
        },
    );
}

fn unregister(start: usize) {
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    reg.remove(&start);
}

/// Runs `f` on the registered module whose `.text` contains `pc`, with the
/// `.text` offset of `pc`. The registry lock is held during `f` and released
/// before this returns.
fn with_module_at<R>(pc: usize, f: impl FnOnce(&ModuleInner, u32) -> Option<R>) -> Option<R> {
    let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let (start, e) = reg.range(..=pc).next_back()?;
    if pc >= e.end {
        return None;
    }
    let off = u32::try_from(pc - start).ok()?;
    // SAFETY: registered entries point to live modules (see `Entry`).
    f(unsafe { &*e.module }, off)
}

/// The trap code of the instruction at `pc`, if `pc` is in registered Wasm
/// code and the module's trap table lists exactly that offset. Called from
/// the signal handler: allocates nothing.
pub(crate) fn lookup_trap(pc: usize) -> Option<TrapCode> {
    with_module_at(pc, |m, off| m.trap_code(off))
}

/// Why a Wasm frame's references could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootsError {
    /// The return address is not in any registered module's `.text`.
    NotWasm,
    /// The module's stack-map section is malformed.
    BadStackMap,
}

/// Finds the references held by Wasm frames, for one collection. It holds the
/// registry's read lock for its lifetime (one lock per collection instead of
/// one per frame) and remembers the last module it found, since consecutive
/// frames are almost always in the same module. Drop it before releasing
/// references: a host value's destructor may drop a `Module`, which takes the
/// registry's write lock.
pub(crate) struct RootScanner {
    reg: std::sync::RwLockReadGuard<'static, BTreeMap<usize, Entry>>,
    /// (text start, text end, module) of the last frame's module.
    last: Option<(usize, usize, *const ModuleInner)>,
}

impl RootScanner {
    pub(crate) fn new() -> RootScanner {
        RootScanner {
            reg: REGISTRY.read().unwrap_or_else(|e| e.into_inner()),
            last: None,
        }
    }

    fn module_at(&mut self, pc: usize) -> Option<(&ModuleInner, u32)> {
        let (start, end, module) = match self.last {
            Some((start, end, m)) if pc >= start && pc < end => (start, end, m),
            _ => {
                let (start, e) = self.reg.range(..=pc).next_back()?;
                let found = (*start, e.end, e.module);
                self.last = Some(found);
                found
            }
        };
        if pc >= end {
            return None;
        }
        let off = u32::try_from(pc - start).ok()?;
        // SAFETY: registered entries point to live modules (see `Entry`), and
        // the read lock we hold keeps them registered.
        Some((unsafe { &*module }, off))
    }

    /// Appends the references live in the Wasm frame whose frame pointer is
    /// `fp`, suspended at return address `ret_pc`, as listed by its module's
    /// stack map for exactly that return address.
    ///
    /// # Safety
    /// `fp` must be the frame pointer of that live Wasm frame.
    pub(crate) unsafe fn frame_roots(
        &mut self,
        ret_pc: usize,
        fp: usize,
        out: &mut Vec<*mut VMExternData>,
    ) -> Result<(), RootsError> {
        // The return address may be one past the function's last byte (a call
        // that never returns ends it), so find the module at `ret_pc - 1` and
        // look the stack map up by the exact return address.
        let (m, off) = self
            .module_at(ret_pc.wrapping_sub(1))
            .ok_or(RootsError::NotWasm)?;
        let map = m.stack_map(off + 1).map_err(|()| RootsError::BadStackMap)?;
        if let Some(map) = map {
            let sp = fp.wrapping_sub(map.frame_span as usize);
            for slot in map.slots() {
                let addr = sp.wrapping_add(slot as usize);
                // SAFETY: caller contract: the frame is live, and the stack map
                // lists SP-relative slots inside it that hold pointers.
                out.push(unsafe { *(addr as *const *mut VMExternData) });
            }
        }
        Ok(())
    }
}

/// The Wasm frame at `pc` (a trap PC or, with `is_return_address`, a
/// return address, which is looked up at `pc - 1`).
pub(crate) fn frame_info(pc: usize, is_return_address: bool) -> Option<FrameInfo> {
    let pc = if is_return_address {
        pc.checked_sub(1)?
    } else {
        pc
    };
    with_module_at(pc, |m, off| m.frame_info(off))
}
