//! Tables' runtime side: `TableData`, the elements behind a public `Table`
//! handle, and the lazy initialisation of funcref tables.
//!
//! Elements are one pointer each. An externref table holds `*mut
//! VMExternData`s (each non-null element holds one reference count, released
//! when overwritten or when the store drops). A funcref table holds *tagged*
//! slots ([`FUNCREF_INIT_BIT`]): `0` for an element not initialised yet,
//! otherwise `ptr | FUNCREF_INIT_BIT` with `ptr` a `*const VMFuncRef` or null.
//! The `VMTableDefinition` (base, length) is inline in the defining
//! instance's VMContext, or boxed for host-created tables; it is rewritten
//! whenever the element vector moves.
//!
//! ## Lazy funcref tables (issue 15)
//!
//! A defined funcref table whose active element segments are all constant,
//! in bounds of its initial size and made of function indices (or
//! `ref.func`/`ref.null` expressions), at most [`MAX_LAZY_RUNS`] of them, is
//! *lazy* ([`lazy_runs`], decided once per module): instantiation leaves its
//! elements `0` and applies none of those segments. An element is
//! initialised on first read, from the precomputed runs `(start, len,
//! segment)`, scanned from the last to the first (a later segment
//! overrides an earlier one); a slot no run covers is null. Initialising
//! makes the owning instance's `VMFuncRef` and store function record
//! (`instance::instance_func`), so instantiation does not grow with the
//! number of elements.
//!
//! Who initialises: compiled code's `table.get` and `call_indirect` call the
//! `table_get_lazy_funcref` builtin ([`get`]); host reads go through [`get`]
//! too; `table.copy` first initialises its source range ([`materialise`]).
//! Every write stores a tagged element, so writes need no initialisation.
//! Such a table's segments cannot fail, so applying them late is the
//! spec's result, with one exception handled by
//! [`TableData::set_lazy_applied`]: when a *later* segment of the same
//! instance fails instantiation, the segments after it must stay unapplied
//! (a function an earlier segment put into an imported table can still
//! read this table).

use crate::vm::code::RuntimeModule;
use crate::vm::gc::externref::{raw_clone, raw_release};
use crate::vm::pool::Pool;
use crate::vm::store::StoreOpaque;
use crate::vm::vmcontext::VMTableDefinition;
use std::sync::Arc;
use wasmc_format::vmoffsets::FUNCREF_INIT_BIT;
use wasmc_format::{ConstOp, ElementItems, ElementMode, ModuleInfo, RefType, TableType, TrapCode};

/// Most element segments a lazy table may have: initialising an element
/// scans them all.
pub(crate) const MAX_LAZY_RUNS: usize = 16;

/// A constant active element segment's place in a lazy table: elements
/// `[start, start + len)` are the segment's items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ElemRun {
    pub start: u32,
    pub len: u32,
    pub segment: u32,
}

/// For each table of `info` (module index space), its runs if it is a lazy
/// table (see the module docs), `None` otherwise. Imported tables, externref
/// tables and tables with a segment that could fail or needs evaluation
/// (a `global.get` offset, an expression other than `ref.func`/`ref.null`,
/// a function index out of range, an element type that differs) are not
/// lazy: instantiation applies their segments as before.
pub(crate) fn lazy_runs(info: &ModuleInfo) -> Vec<Option<Box<[ElemRun]>>> {
    let ni = info.num_imported_tables as usize;
    let mut runs: Vec<Option<Vec<ElemRun>>> = info
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (i >= ni && t.elem == RefType::FuncRef).then(Vec::new))
        .collect();
    for (si, seg) in info.elements.iter().enumerate() {
        let ElementMode::Active { table, offset } = &seg.mode else {
            continue;
        };
        let t = *table as usize;
        let Some(Some(list)) = runs.get_mut(t) else {
            continue;
        };
        let ty = &info.tables[t];
        let start = match (offset.0.as_slice(), ty.table64) {
            ([ConstOp::I32Const(v)], false) => Some(u64::from(*v as u32)),
            ([ConstOp::I64Const(v)], true) => Some(*v as u64),
            _ => None,
        };
        let items_ok = seg.elem_type == RefType::FuncRef
            && match &seg.items {
                ElementItems::Functions(fs) => fs.iter().all(|f| *f < info.num_funcs),
                ElementItems::Exprs(es) => es.iter().all(|e| match e.0.as_slice() {
                    [ConstOp::RefFunc(f)] => *f < info.num_funcs,
                    [ConstOp::RefNull(_)] => true,
                    _ => false,
                }),
            };
        let len = seg.items.len() as u64;
        let fits = start.is_some_and(|s| s.saturating_add(len) <= u64::from(ty.min));
        match (start, u32::try_from(si)) {
            (Some(s), Ok(segment)) if items_ok && fits && list.len() < MAX_LAZY_RUNS => {
                if len > 0 {
                    // `fits`: both below the table's u32 size.
                    list.push(ElemRun {
                        start: s as u32,
                        len: len as u32,
                        segment,
                    });
                }
            }
            _ => runs[t] = None,
        }
    }
    runs.into_iter()
        .map(|r| r.map(Vec::into_boxed_slice))
        .collect()
}

/// The function that `runs` (of a table of `info`) give element `i`, with
/// only segments below `applied` counted; `None` for null.
pub(crate) fn run_func(info: &ModuleInfo, runs: &[ElemRun], i: u32, applied: u32) -> Option<u32> {
    let r = runs
        .iter()
        .rev()
        .find(|r| r.segment < applied && i >= r.start && i - r.start < r.len)?;
    let k = (i - r.start) as usize;
    match &info.elements.get(r.segment as usize)?.items {
        ElementItems::Functions(fs) => fs.get(k).copied(),
        ElementItems::Exprs(es) => match es.get(k)?.0.as_slice() {
            [ConstOp::RefFunc(f)] => Some(*f),
            _ => None,
        },
    }
}

/// Where a lazy table's uninitialised elements come from.
#[derive(Clone)]
pub(crate) struct LazyInit {
    /// The store index of the instance that defines the table (whose
    /// functions the elements are).
    pub owner: usize,
    pub module: Arc<RuntimeModule>,
    /// The table's index in `module`.
    pub table: u32,
    /// Only segments below this were applied: all once instantiation
    /// got past the element segments, those before the failing one if it
    /// failed there, none before then.
    pub applied: u32,
}

impl LazyInit {
    /// The function of element `i`, `None` for null.
    fn func(&self, i: u32) -> Option<u32> {
        let runs = self.module.lazy_runs(self.table)?;
        run_func(self.module.info(), runs, i, self.applied)
    }
}

/// A funcref table slot: initialised (the untagged element), or not yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Init(*mut u8),
    Lazy,
}

pub(crate) struct TableData {
    /// Tagged for a funcref table (see the module docs).
    elements: Vec<*mut u8>,
    def: *mut VMTableDefinition,
    own_def: Option<Box<VMTableDefinition>>,
    pub ty: TableType,
    /// The pool the element vector came from (pooling allocator); it goes
    /// back there, cleared, when the table is freed.
    pool: Option<Arc<Pool>>,
    /// A lazy table's initialiser; `None` for an eager table or once every
    /// element was initialised.
    lazy: Option<LazyInit>,
}

impl TableData {
    /// A host-created table of `ty.min` elements, each `init` (a raw,
    /// untagged reference; for externref tables each copy takes a count).
    ///
    /// # Safety
    /// `init` must be null or a live reference of the table's type.
    pub unsafe fn new(
        ty: TableType,
        init: *mut u8,
        max_elements: u32,
    ) -> Result<TableData, String> {
        // SAFETY: this function's contract.
        unsafe { Self::new_in(ty, init, max_elements, None, None) }
    }

    /// A table an instance defines: null elements, or for a lazy table
    /// (`lazy`) uninitialised ones; its element vector taken from `pool`
    /// if given (`Err` names the pool's limit it exceeds).
    pub fn new_defined(
        ty: TableType,
        max_elements: u32,
        pool: Option<&Arc<Pool>>,
        lazy: Option<LazyInit>,
    ) -> Result<TableData, String> {
        // SAFETY: null is a valid element of any table.
        unsafe { Self::new_in(ty, std::ptr::null_mut(), max_elements, pool, lazy) }
    }

    /// # Safety
    /// As for [`Self::new`].
    unsafe fn new_in(
        ty: TableType,
        init: *mut u8,
        max_elements: u32,
        pool: Option<&Arc<Pool>>,
        lazy: Option<LazyInit>,
    ) -> Result<TableData, String> {
        // A type the validator would refuse (only a host-made
        // `Table::new` can bring one): growth and import matching assume it.
        if let Some(max) = ty.max.filter(|&max| u64::from(ty.min) > max) {
            return Err(format!(
                "invalid table type: minimum of {} elements exceeds its maximum of {max}",
                ty.min
            ));
        }
        if let Some(max) = ty
            .max
            .filter(|&max| !ty.table64 && max > u64::from(u32::MAX))
        {
            return Err(format!(
                "invalid table type: maximum of {max} elements of a 32-bit table exceeds 2^32 - 1"
            ));
        }
        if ty.min > max_elements {
            return Err(format!(
                "table minimum of {} elements exceeds the limit of {max_elements}",
                ty.min
            ));
        }
        let mut own_def = Box::new(VMTableDefinition {
            base: std::ptr::null_mut(),
            current_elements: 0,
        });
        let elements = match pool {
            Some(p) => p.take_table(ty.min)?,
            None => Vec::new(),
        };
        let lazy = lazy.filter(|_| ty.elem == RefType::FuncRef);
        let mut t = TableData {
            elements,
            def: &mut *own_def,
            own_def: Some(own_def),
            ty,
            pool: pool.cloned(),
            lazy,
        };
        // Every slot is `0`, uninitialised, for a lazy table: a pooled
        // vector comes back null over its length (`Pool::take_table`), so
        // only the slots past it are written; every slot is the tagged
        // `init` otherwise.
        let n = ty.min as usize;
        // A minimum the host cannot allocate (`max_table_elements` is the
        // embedder's choice, up to 2^32 - 1) is an error, not an abort of
        // the process. A pooled vector already has the capacity.
        t.elements
            .try_reserve_exact(n.saturating_sub(t.elements.len()))
            .map_err(|e| format!("cannot allocate a table of {n} elements: {e}"))?;
        if t.lazy.is_some() {
            debug_assert!(t.elements.iter().all(|e| e.is_null()));
            t.elements.truncate(n);
            t.elements.resize(n, std::ptr::null_mut());
        } else {
            let fill = t.encode(init);
            t.elements.clear();
            t.elements.resize(n, fill);
        }
        if ty.elem == RefType::ExternRef {
            for _ in 0..ty.min {
                // SAFETY: the caller promises `init` is null or a live
                // reference of the table's type (externref here); each copy
                // in the table takes its own count.
                unsafe { raw_clone(init.cast()) };
            }
        }
        t.sync();
        Ok(t)
    }

    /// A slot's value for element `v`: tagged in a funcref table.
    fn encode(&self, v: *mut u8) -> *mut u8 {
        if self.is_extern() {
            v
        } else {
            v.map_addr(|a| a | FUNCREF_INIT_BIT)
        }
    }

    /// The element in slot value `raw` (untagged), `Slot::Lazy` for an
    /// uninitialised funcref slot.
    fn decode(&self, raw: *mut u8) -> Slot {
        if self.is_extern() {
            Slot::Init(raw)
        } else if raw.addr() & FUNCREF_INIT_BIT == 0 {
            Slot::Lazy
        } else {
            Slot::Init(raw.map_addr(|a| a & !FUNCREF_INIT_BIT))
        }
    }

    /// Makes a lazy table count the segments below `applied`: all of them
    /// once instantiation has processed every segment, the ones before the
    /// failing one if it failed there (the spec leaves later ones
    /// unapplied). A lazy table is made counting none.
    pub fn set_lazy_applied(&mut self, applied: u32) {
        if let Some(l) = &mut self.lazy {
            l.applied = applied;
        }
    }

    /// Makes `def` (inside a VMContext) the authoritative definition.
    ///
    /// # Safety
    /// `def` must stay valid as long as this table.
    pub unsafe fn set_def(&mut self, def: *mut VMTableDefinition) {
        self.own_def = None;
        self.def = def;
        self.sync();
    }

    pub fn def(&self) -> *mut VMTableDefinition {
        self.def
    }

    fn sync(&mut self) {
        // SAFETY: `def` is `own_def` (boxed, owned by self) or, after
        // `set_def`, a definition its caller promised outlives this table.
        unsafe {
            (*self.def).base = self.elements.as_mut_ptr();
            (*self.def).current_elements = self.elements.len() as u32;
        }
    }

    pub fn size(&self) -> u32 {
        self.elements.len() as u32
    }

    fn is_extern(&self) -> bool {
        self.ty.elem == RefType::ExternRef
    }

    /// Slot `i`, decoded; `None` if out of bounds. Use [`get`] to have a
    /// lazy element initialised.
    pub fn slot(&self, i: u32) -> Option<Slot> {
        self.elements.get(i as usize).map(|r| self.decode(*r))
    }

    /// Stores `v` at `i`, with precise reference counting.
    ///
    /// # Safety
    /// `v` must be null or a live reference of the table's type.
    pub unsafe fn set(&mut self, i: u32, v: *mut u8) -> Result<(), TrapCode> {
        let ext = self.is_extern();
        let slot = self
            .elements
            .get_mut(i as usize)
            .ok_or(TrapCode::TableOutOfBounds)?;
        let old = std::mem::replace(
            slot,
            if ext {
                v
            } else {
                v.map_addr(|a| a | FUNCREF_INIT_BIT)
            },
        );
        if ext {
            // Count first: `v` may be `old` itself, held only by this slot.
            // SAFETY: `v` is null or a live externref (caller contract) and
            // the slot takes a count on it; `old` was an element, which held
            // one count, now given up.
            unsafe {
                raw_clone(v.cast());
                raw_release(old.cast());
            }
        }
        Ok(())
    }

    /// Grows by `delta` elements of `init`; the old size or `None`.
    ///
    /// # Safety
    /// As for [`Self::set`].
    pub unsafe fn grow(&mut self, delta: u32, init: *mut u8, limit: u32) -> Option<u32> {
        let old = self.size();
        let new = old.checked_add(delta)?;
        // A pooled table stays inside its vector's capacity.
        let pooled = self
            .pool
            .as_ref()
            .map_or(u32::MAX, |p| p.limits().table_elements);
        let max = self
            .ty
            .max
            .map_or(u32::MAX, |m| u32::try_from(m).unwrap_or(u32::MAX));
        if new > max.min(limit).min(pooled) {
            return None;
        }
        self.elements.try_reserve(delta as usize).ok()?;
        let fill = self.encode(init);
        self.elements.resize(new as usize, fill);
        if self.is_extern() {
            for _ in 0..delta {
                // SAFETY: `init` is null or a live externref (caller
                // contract); each new element takes its own count.
                unsafe { raw_clone(init.cast()) };
            }
        }
        self.sync();
        Some(old)
    }

    /// `table.fill`.
    ///
    /// # Safety
    /// As for [`Self::set`].
    pub unsafe fn fill(&mut self, dst: u32, v: *mut u8, len: u32) -> Result<(), TrapCode> {
        let end = dst.checked_add(len).ok_or(TrapCode::TableOutOfBounds)?;
        if end > self.size() {
            return Err(TrapCode::TableOutOfBounds);
        }
        // `set` counts `v` before it releases the element it replaces, so `v`
        // stays live even if its only other count was in the filled range.
        for i in dst..end {
            // SAFETY: `v` is null or a live reference of the table's type
            // (this function's contract, the same as `set`'s).
            unsafe { self.set(i, v)? };
        }
        Ok(())
    }

    /// The raw (untagged) elements `[s, s + len)`, borrowed: no count is
    /// taken, so they stay live only until the table changes (hand them to
    /// [`Self::set_range`], which counts them before it releases anything).
    /// The range must have been initialised ([`materialise`]): an
    /// uninitialised element is an error, never copied.
    pub fn get_range(&self, s: u32, len: u32) -> Result<Vec<*mut u8>, TrapCode> {
        let end = s.checked_add(len).ok_or(TrapCode::TableOutOfBounds)?;
        let raw = self
            .elements
            .get(s as usize..end as usize)
            .ok_or(TrapCode::TableOutOfBounds)?;
        raw.iter()
            .map(|r| match self.decode(*r) {
                Slot::Init(p) => Ok(p),
                // A caller that skipped `materialise`: a runtime bug.
                Slot::Lazy => Err(TrapCode::UnreachableCodeReached),
            })
            .collect()
    }

    /// Stores `items` at `d..`, all or nothing.
    ///
    /// `items` may alias the elements being overwritten (`table.copy` within
    /// one table, or between two imports of the same table, snapshots the
    /// source range with [`Self::get_range`], which takes no counts). So every
    /// item is counted *before* any old element is released: otherwise a
    /// store could free an item that a later store in the same range still
    /// has to write (issue 10, bug 1). The old elements are released only
    /// after the whole range is written, so the table is consistent whenever
    /// a host value's destructor runs.
    ///
    /// # Safety
    /// Every item must be null or a live reference of the table's type.
    pub unsafe fn set_range(&mut self, d: u32, items: &[*mut u8]) -> Result<(), TrapCode> {
        let end = u32::try_from(items.len())
            .ok()
            .and_then(|n| d.checked_add(n))
            .ok_or(TrapCode::TableOutOfBounds)?;
        let ext = self.is_extern();
        let slots = self
            .elements
            .get_mut(d as usize..end as usize)
            .ok_or(TrapCode::TableOutOfBounds)?;
        if !ext {
            for (slot, v) in slots.iter_mut().zip(items) {
                *slot = v.map_addr(|a| a | FUNCREF_INIT_BIT);
            }
            return Ok(());
        }
        for v in items {
            // SAFETY: each item is null or a live externref (this function's
            // contract) until the first release below, and this count keeps
            // it live after that.
            unsafe { raw_clone(v.cast()) };
        }
        let mut old = Vec::with_capacity(items.len());
        for (slot, v) in slots.iter_mut().zip(items) {
            old.push(std::mem::replace(slot, *v));
        }
        for o in old {
            // SAFETY: each overwritten element held one count, now ours; the
            // new elements were counted above, so none of them is freed here.
            unsafe { raw_release(o.cast()) };
        }
        Ok(())
    }
}

impl Drop for TableData {
    fn drop(&mut self) {
        if self.is_extern() {
            for e in self.elements.drain(..) {
                // SAFETY: each element of an externref table holds one
                // count, released once as the elements are drained.
                unsafe { raw_release(e.cast()) };
            }
        }
        if let Some(p) = self.pool.take() {
            p.return_table(std::mem::take(&mut self.elements));
        }
    }
}

/// Element `i` of table `ti` (untagged), initialised first if it was not:
/// the one way the runtime reads a single element.
pub(crate) fn get(store: &mut StoreOpaque, ti: usize, i: u32) -> Result<*mut u8, TrapCode> {
    match store.tables[ti].slot(i).ok_or(TrapCode::TableOutOfBounds)? {
        Slot::Init(p) => Ok(p),
        Slot::Lazy => {
            let Some(lazy) = store.tables[ti].lazy.clone() else {
                // Only a lazy table has uninitialised slots.
                return Err(TrapCode::UnreachableCodeReached);
            };
            initialise(store, ti, &lazy, i)
        }
    }
}

/// Initialises every uninitialised element of table `ti` in `[s, s + len)`
/// (all of them, and the table stops being lazy, if that is the whole
/// table); `TableOutOfBounds` if the range is not inside the table.
pub(crate) fn materialise(
    store: &mut StoreOpaque,
    ti: usize,
    s: u32,
    len: u32,
) -> Result<(), TrapCode> {
    let end = s.checked_add(len).ok_or(TrapCode::TableOutOfBounds)?;
    let size = store.tables[ti].size();
    if end > size {
        return Err(TrapCode::TableOutOfBounds);
    }
    let Some(lazy) = store.tables[ti].lazy.clone() else {
        return Ok(());
    };
    for i in s..end {
        if store.tables[ti].slot(i) == Some(Slot::Lazy) {
            initialise(store, ti, &lazy, i)?;
        }
    }
    if s == 0 && end == size {
        store.tables[ti].lazy = None;
    }
    Ok(())
}

/// Initialises the uninitialised element `i` of lazy table `ti` from
/// `lazy` (its initialiser); the element.
fn initialise(
    store: &mut StoreOpaque,
    ti: usize,
    lazy: &LazyInit,
    i: u32,
) -> Result<*mut u8, TrapCode> {
    let p = match lazy.func(i) {
        // `lazy_runs` checked the index; a corrupt function record is a
        // trap, never a bad pointer.
        Some(f) => crate::vm::instance::func_ref(store, lazy.owner, f)
            .map_err(|_| TrapCode::UnreachableCodeReached)?
            .cast::<u8>(),
        None => std::ptr::null_mut(),
    };
    // SAFETY: `p` is null or the owner's `VMFuncRef` of `f`, filled in by
    // `func_ref` and living as long as the store; funcref elements hold no
    // counts.
    unsafe { store.tables[ti].set(i, p) }?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmc_format::{ConstExpr, ElementSegment};

    fn info(tables: Vec<TableType>, elements: Vec<ElementSegment>) -> ModuleInfo {
        ModuleInfo {
            tables,
            elements,
            num_funcs: 10,
            ..ModuleInfo::default()
        }
    }

    fn funcref_table(min: u32) -> TableType {
        TableType {
            elem: RefType::FuncRef,
            min,
            max: None,
            table64: false,
        }
    }

    fn active(table: u32, offset: Vec<ConstOp>, fs: Vec<u32>) -> ElementSegment {
        ElementSegment {
            mode: ElementMode::Active {
                table,
                offset: ConstExpr(offset),
            },
            elem_type: RefType::FuncRef,
            items: ElementItems::Functions(fs),
        }
    }

    #[test]
    fn later_runs_override_earlier_ones_and_gaps_are_null() {
        let m = info(
            vec![funcref_table(10)],
            vec![
                active(0, vec![ConstOp::I32Const(2)], vec![1, 2, 3, 4]),
                active(0, vec![ConstOp::I32Const(4)], vec![7, 8]),
            ],
        );
        let runs = lazy_runs(&m);
        let r = runs[0].as_deref().expect("lazy");
        let got: Vec<_> = (0..10).map(|i| run_func(&m, r, i, u32::MAX)).collect();
        let want = [
            None,
            None,
            Some(1),
            Some(2),
            Some(7),
            Some(8),
            None,
            None,
            None,
            None,
        ];
        assert_eq!(got, want);
        // Instantiation failed at segment 1: only segment 0 counts.
        assert_eq!(run_func(&m, r, 4, 1), Some(3));
    }

    #[test]
    fn tables_whose_segments_could_fail_or_need_evaluation_are_eager() {
        let global_offset = info(
            vec![funcref_table(10)],
            vec![active(0, vec![ConstOp::GlobalGet(0)], vec![1])],
        );
        assert_eq!(lazy_runs(&global_offset)[0], None);
        let out_of_bounds = info(
            vec![funcref_table(10)],
            vec![active(0, vec![ConstOp::I32Const(9)], vec![1, 2])],
        );
        assert_eq!(lazy_runs(&out_of_bounds)[0], None);
        let bad_func = info(
            vec![funcref_table(10)],
            vec![active(0, vec![ConstOp::I32Const(0)], vec![10])],
        );
        assert_eq!(lazy_runs(&bad_func)[0], None);
        let many = info(
            vec![funcref_table(100)],
            (0..=MAX_LAZY_RUNS as i32)
                .map(|i| active(0, vec![ConstOp::I32Const(i)], vec![1]))
                .collect(),
        );
        assert_eq!(lazy_runs(&many)[0], None);
        // Imported tables are never lazy, externref tables neither.
        let mut imported = info(vec![funcref_table(10)], vec![]);
        imported.num_imported_tables = 1;
        assert_eq!(lazy_runs(&imported)[0], None);
        let ext = info(
            vec![TableType {
                elem: RefType::ExternRef,
                ..funcref_table(1)
            }],
            vec![],
        );
        assert_eq!(lazy_runs(&ext)[0], None);
        // A table without segments is lazy with no runs: all null.
        let empty = info(vec![funcref_table(3)], vec![]);
        assert_eq!(lazy_runs(&empty)[0].as_deref(), Some(&[][..]));
    }
}
