//! Runs a [`Program`] through the library API (compile in memory with
//! `wasmc_compiler`, `Module::from_bytes`, a `Linker<()>` with host functions)
//! and checks it against the [`Model`].
//!
//! Host values are [`Tracked`]: each knows its id and carries a canary, and a
//! shared [`Registry`] records every value created, alive and dropped, by
//! the address of the value inside its `ExternRef`. That gives the oracle:
//! - identity (a generation check): every reference the host sees is looked
//!   up by address before it is read; an address no live value has is a
//!   read after free, and a live value with another id than the model
//!   predicts is a reference to the wrong (possibly reused) allocation;
//! - a second drop of a value is a double free;
//! - after every command (no Wasm running, so the activations table is
//!   empty) the live values must be exactly those the model says the
//!   store and the host hold: one more is a leak, one less a premature free;
//! - when the store drops, everything not held by the host is freed, and
//!   then everything is.

use super::model::{Event, Model, Ref, Trapped};
use super::*;
use crate::fuzz::Outcome;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use wasmc_compiler::{compile, CompileOptions, OptLevel};
use wasmc_loader::format::ValType;
use wasmc_loader::{
    Caller, Error, ExternRef, FuncType, Global, GlobalType, Instance, Linker, Module, RefType,
    Store, Table, TableType, TrapCode, Val,
};

const MAGIC: u64 = 0x7ac4_ed00_5afe_1d00;
const DEAD: u64 = 0xdead_dead_dead_dead;

/// Every host value of one run: alive, by address and by id, and dropped.
#[derive(Default)]
pub struct Registry(Mutex<Reg>);

#[derive(Default)]
struct Reg {
    by_addr: HashMap<usize, u32>,
    live: BTreeSet<u32>,
    freed: BTreeSet<u32>,
    errors: Vec<String>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Reg> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new host value with id `id`.
    pub fn make(self: &Arc<Self>, id: u32) -> ExternRef {
        let r = ExternRef::new(Tracked {
            id,
            magic: MAGIC,
            reg: self.clone(),
        });
        let mut g = self.lock();
        g.by_addr.insert(addr(&r), id);
        if !g.live.insert(id) || g.freed.contains(&id) {
            g.errors.push(format!("id {id} created twice"));
        }
        r
    }

    /// The id of the value `r` refers to, checked (see the module docs).
    pub fn identify(&self, r: &ExternRef) -> Result<u32, String> {
        let id = *self.lock().by_addr.get(&addr(r)).ok_or_else(|| {
            "read after free: a reference to memory no live host value has".to_string()
        })?;
        // The address belongs to a live value, so reading it is sound.
        let t = r
            .downcast_ref::<Tracked>()
            .ok_or("a reference to a value of another type")?;
        if t.magic != MAGIC || t.id != id {
            return Err(format!(
                "corrupted host value at id {id}: id {} magic {:#x}",
                t.id, t.magic
            ));
        }
        Ok(id)
    }

    /// The ids alive now.
    pub fn live(&self) -> BTreeSet<u32> {
        self.lock().live.clone()
    }

    /// Errors seen in drops (double frees, corrupted values).
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }
}

fn addr(r: &ExternRef) -> usize {
    r.data_any() as *const (dyn std::any::Any + Send + Sync) as *const () as usize
}

/// A host value that reports its drop to the registry.
pub struct Tracked {
    id: u32,
    magic: u64,
    reg: Arc<Registry>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let me = self as *const Tracked as usize;
        let mut g = self.reg.lock();
        if self.magic != MAGIC {
            g.errors
                .push(format!("drop of a corrupted host value (id {})", self.id));
        } else if !g.live.remove(&self.id) {
            g.errors.push(format!("double free of id {}", self.id));
        }
        g.freed.insert(self.id);
        if g.by_addr.get(&me) == Some(&self.id) {
            g.by_addr.remove(&me);
        }
        drop(g);
        self.magic = DEAD;
    }
}

/// The host side: the events still expected, the slots, the first error.
struct Host {
    events: VecDeque<Event>,
    slots: Vec<Option<ExternRef>>,
    error: Option<String>,
}

type Shared = Arc<Mutex<Host>>;

fn lock(h: &Shared) -> MutexGuard<'_, Host> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

/// The id of a reference value (`None` for null).
fn ident(reg: &Registry, v: &Val) -> Result<Ref, String> {
    match v {
        Val::ExternRef(None) => Ok(None),
        Val::ExternRef(Some(r)) => reg.identify(r).map(Some),
        other => Err(format!("expected an externref, got {other:?}")),
    }
}

fn ext(r: &Option<ExternRef>) -> Val {
    Val::ExternRef(r.clone())
}

fn linker(host: &Shared, reg: &Arc<Registry>) -> Linker<()> {
    let mut l = Linker::new(crate::engine());
    let ft = |params: &[ValType], results: &[ValType]| FuncType {
        params: params.to_vec(),
        results: results.to_vec(),
    };
    use ValType::{ExternRef as E, I32};

    /// Pops the next event for a call `what` at `site`, or records a desync.
    fn next(h: &mut Host, what: &str, site: i32) -> anyhow::Result<Event> {
        let e = h.events.pop_front();
        let ok = match &e {
            Some(Event::Make { site: s, .. }) => what == "make" && *s as i32 == site,
            Some(Event::Check { site: s, .. }) => what == "check" && *s as i32 == site,
            Some(Event::CheckI32 { site: s, .. }) => what == "check_i32" && *s as i32 == site,
            Some(Event::Gc { site: s }) => what == "gc" && *s as i32 == site,
            Some(Event::Keep { site: s, .. }) => what == "keep" && *s as i32 == site,
            Some(Event::Take { site: s, .. }) => what == "take" && *s as i32 == site,
            Some(Event::Echo { site: s, .. }) => what == "echo" && *s as i32 == site,
            None => false,
        };
        if ok {
            Ok(e.expect("matched"))
        } else {
            Err(fail(
                h,
                format!("host call {what} at site {site}, but the model expects {e:?}"),
            ))
        }
    }
    fn fail(h: &mut Host, msg: String) -> anyhow::Error {
        if h.error.is_none() {
            h.error = Some(msg.clone());
        }
        anyhow::Error::msg(msg)
    }
    fn expect_ref(
        h: &mut Host,
        reg: &Registry,
        v: &Val,
        want: Ref,
        at: &str,
    ) -> anyhow::Result<()> {
        match ident(reg, v) {
            Ok(got) if got == want => Ok(()),
            Ok(got) => Err(fail(
                h,
                format!("{at}: got {got:?}, the model says {want:?}"),
            )),
            Err(e) => Err(fail(h, format!("{at}: {e} (the model says {want:?})"))),
        }
    }

    let (h, r) = (host.clone(), reg.clone());
    l.func_new("host", "make", ft(&[I32], &[E]), move |_, a, res| {
        let mut h = lock(&h);
        let site = a[0].i32().unwrap_or(-1);
        if let Event::Make { id, .. } = next(&mut h, "make", site)? {
            res[0] = Val::ExternRef(Some(r.make(id)));
        }
        Ok(())
    })
    .expect("define");
    let (h, r) = (host.clone(), reg.clone());
    l.func_new("host", "check", ft(&[E, I32], &[]), move |_, a, _| {
        let mut h = lock(&h);
        let site = a[1].i32().unwrap_or(-1);
        if let Event::Check { expect, .. } = next(&mut h, "check", site)? {
            expect_ref(&mut h, &r, &a[0], expect, &format!("check at site {site}"))?;
        }
        Ok(())
    })
    .expect("define");
    let h = host.clone();
    l.func_new("host", "check_i32", ft(&[I32, I32], &[]), move |_, a, _| {
        let mut h = lock(&h);
        let site = a[1].i32().unwrap_or(-1);
        if let Event::CheckI32 { expect, .. } = next(&mut h, "check_i32", site)? {
            let got = a[0].i32().unwrap_or(i32::MIN);
            if got != expect {
                return Err(fail(
                    &mut h,
                    format!("check_i32 at site {site}: got {got}, the model says {expect}"),
                ));
            }
        }
        Ok(())
    })
    .expect("define");
    let h = host.clone();
    l.func_new(
        "host",
        "gc",
        ft(&[I32], &[]),
        move |mut c: Caller<'_, ()>, a, _| {
            let mut h = lock(&h);
            next(&mut h, "gc", a[0].i32().unwrap_or(-1))?;
            c.gc();
            Ok(())
        },
    )
    .expect("define");
    let (h, r) = (host.clone(), reg.clone());
    l.func_new("host", "keep", ft(&[E, I32, I32], &[]), move |_, a, _| {
        let mut h = lock(&h);
        let site = a[2].i32().unwrap_or(-1);
        if let Event::Keep { slot, value, .. } = next(&mut h, "keep", site)? {
            expect_ref(&mut h, &r, &a[0], value, &format!("keep at site {site}"))?;
            let v = a[0].externref().flatten().cloned();
            h.slots[slot as usize] = v;
        }
        Ok(())
    })
    .expect("define");
    let (h, r) = (host.clone(), reg.clone());
    l.func_new("host", "take", ft(&[I32, I32], &[E]), move |_, a, res| {
        let mut h = lock(&h);
        let site = a[1].i32().unwrap_or(-1);
        if let Event::Take { slot, value, .. } = next(&mut h, "take", site)? {
            let v = ext(&h.slots[slot as usize]);
            expect_ref(&mut h, &r, &v, value, &format!("take at site {site}"))?;
            res[0] = v;
        }
        Ok(())
    })
    .expect("define");
    let (h, r) = (host.clone(), reg.clone());
    l.func_new("host", "echo", ft(&[E, I32], &[E]), move |_, a, res| {
        let mut h = lock(&h);
        let site = a[1].i32().unwrap_or(-1);
        if let Event::Echo { value, .. } = next(&mut h, "echo", site)? {
            expect_ref(&mut h, &r, &a[0], value, &format!("echo at site {site}"))?;
            res[0] = a[0].clone();
        }
        Ok(())
    })
    .expect("define");
    l
}

/// Compile options of a program.
pub fn options(p: &Program) -> CompileOptions {
    CompileOptions {
        opt_level: if p.speed {
            OptLevel::Speed
        } else {
            OptLevel::None
        },
        threads: Some(1),
        ..CompileOptions::default()
    }
}

fn build(wat: &str, opts: &CompileOptions, what: &str) -> Result<Module, String> {
    let wasm = ::wat::parse_str(wat).map_err(|e| format!("{what}: invalid text: {e}"))?;
    let art = compile(&wasm, opts).map_err(|e| format!("{what}: compile: {e}"))?;
    Module::from_bytes(crate::engine(), &art).map_err(|e| format!("{what}: load: {e}"))
}

struct Run<'a> {
    p: &'a Program,
    store: Store<()>,
    main: Instance,
    prov: Instance,
    model: Model,
    host: Shared,
    reg: Arc<Registry>,
}

/// Runs `p`; see the module docs for what is checked.
pub fn run(p: &Program) -> Outcome {
    match run_inner(p) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e),
    }
}

fn run_inner(p: &Program) -> Result<(), String> {
    let opts = options(p);
    let t0 = std::time::Instant::now();
    let prov_mod = build(&wat::provider(p), &opts, "provider")?;
    let t1 = std::time::Instant::now();
    let main_mod = build(&wat::main(p), &opts, "main module")?;
    let t2 = std::time::Instant::now();

    let reg = Arc::new(Registry::default());
    let host: Shared = Arc::new(Mutex::new(Host {
        events: VecDeque::new(),
        slots: vec![None; SLOTS as usize],
        error: None,
    }));
    let mut store = Store::new(crate::engine(), ());
    store.set_gc_stress(p.stress);
    store.set_max_table_elements(TABLE_LIMIT);
    let mut l = linker(&host, &reg);
    let gseg = Global::new(
        &mut store,
        GlobalType {
            ty: ValType::ExternRef,
            mutable: false,
        },
        Val::ExternRef(Some(reg.make(0))),
    )
    .map_err(|e| format!("Global::new: {e}"))?;
    l.define(&store, "host", "gseg", gseg)
        .map_err(|e| e.to_string())?;
    for (i, (d, filled)) in p.host_tables.iter().enumerate() {
        let init = if *filled {
            gseg.get(&mut store)
        } else {
            Val::ExternRef(None)
        };
        let ty = TableType {
            elem: RefType::ExternRef,
            min: d.min,
            max: d.max.map(u64::from),
            table64: false,
        };
        let t = Table::new(&mut store, ty, init).map_err(|e| format!("Table::new: {e}"))?;
        l.define(&store, "host", &format!("ht{i}"), t)
            .map_err(|e| e.to_string())?;
    }
    let prov = l
        .instantiate(&mut store, &prov_mod)
        .map_err(|e| format!("instantiate provider: {e}"))?;
    l.instance(&mut store, "prov", prov)
        .map_err(|e| e.to_string())?;
    let main = l
        .instantiate(&mut store, &main_mod)
        .map_err(|e| format!("instantiate main: {e}"))?;
    let mut r = Run {
        p,
        store,
        main,
        prov,
        model: Model::new(p, 0),
        host,
        reg,
    };
    r.invariants("after instantiation")?;
    for c in &p.cmds {
        r.cmd(c)
            .map_err(|e| format!("command {} {:?}: {e}", c.id, c.kind))?;
        r.invariants(&format!("after command {} {:?}", c.id, c.kind))?;
    }
    r.check_all().map_err(|e| format!("final check: {e}"))?;
    if std::env::var_os("WASMC_FUZZ_VERBOSE").is_some() {
        eprintln!(
            "provider {:?} main {:?} run {:?}",
            t1 - t0,
            t2 - t1,
            t2.elapsed()
        );
    }
    let Run {
        store,
        model,
        host,
        reg,
        ..
    } = r;
    drop(store);
    drop(l);
    let held: BTreeSet<u32> = model.slots.iter().flatten().copied().collect();
    let live = reg.live();
    if live != held {
        return Err(format!(
            "after the store dropped: live {live:?}, but the host holds only {held:?}"
        ));
    }
    lock(&host).slots.clear();
    let live = reg.live();
    if !live.is_empty() {
        return Err(format!("never freed: {live:?}"));
    }
    let errors = reg.errors();
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(())
}

impl Run<'_> {
    fn invariants(&mut self, when: &str) -> Result<(), String> {
        if let Some(e) = lock(&self.host).error.take() {
            return Err(format!("{when}: {e}"));
        }
        let errors = self.reg.errors();
        if !errors.is_empty() {
            return Err(format!("{when}: {}", errors.join("; ")));
        }
        let stats = self.store.gc_stats();
        if stats.failed_walks != 0 {
            return Err(format!(
                "{when}: {} stack walk(s) failed",
                stats.failed_walks
            ));
        }
        let live = self.reg.live();
        let want = self.model.reachable();
        if live != want {
            let leaked: Vec<_> = live.difference(&want).collect();
            let freed: Vec<_> = want.difference(&live).collect();
            return Err(format!(
                "{when}: freed while reachable: {freed:?}; alive but unreachable (leaked): {leaked:?}"
            ));
        }
        Ok(())
    }

    /// A host reference for `a` and its model value.
    fn arg(&mut self, a: ArgSrc) -> (Val, Ref) {
        match a {
            ArgSrc::Null => (Val::ExternRef(None), None),
            ArgSrc::New => {
                let id = self.model.fresh_id();
                (Val::ExternRef(Some(self.reg.make(id))), Some(id))
            }
            ArgSrc::Slot(s) => (
                ext(&lock(&self.host).slots[s as usize]),
                self.model.slots[s as usize],
            ),
        }
    }

    fn table(&mut self, t: u32) -> Result<Table, String> {
        self.main
            .get_table(&mut self.store, &format!("tab{t}"))
            .ok_or_else(|| format!("export tab{t} missing"))
    }

    fn global(&mut self, g: u32) -> Result<Global, String> {
        self.main
            .get_global(&mut self.store, &format!("glob{g}"))
            .ok_or_else(|| format!("export glob{g} missing"))
    }

    fn same(&self, what: &str, got: &Val, want: Ref) -> Result<(), String> {
        match ident(&self.reg, got) {
            Ok(g) if g == want => Ok(()),
            Ok(g) => Err(format!("{what}: got {g:?}, the model says {want:?}")),
            Err(e) => Err(format!("{what}: {e} (the model says {want:?})")),
        }
    }

    fn cmd(&mut self, c: &Cmd) -> Result<(), String> {
        let p = self.p;
        match &c.kind {
            CmdKind::Call { func, args } => {
                let (v0, m0) = self.arg(args[0]);
                let (v1, m1) = self.arg(args[1]);
                let (events, expected) = self.model.call(p, *func, [m0, m1]);
                lock(&self.host).events = events.into();
                let f = self
                    .main
                    .get_func(&mut self.store, &format!("f{func}"))
                    .ok_or("function export missing")?;
                let mut res = [Val::ExternRef(None)];
                let got = f.call(&mut self.store, &[Val::I32(1), v0, v1], &mut res);
                if let Some(e) = lock(&self.host).error.take() {
                    return Err(e);
                }
                match (expected, got) {
                    (Ok(want), Ok(())) => self.same("result", &res[0], want)?,
                    (Err(Trapped), Err(Error::Trap(t))) if t.code == TrapCode::TableOutOfBounds => {
                    }
                    (want, got) => {
                        return Err(format!("the model says {want:?}, the call gave {got:?}"))
                    }
                }
                let left = std::mem::take(&mut lock(&self.host).events);
                if !left.is_empty() {
                    return Err(format!("host calls that never happened: {left:?}"));
                }
            }
            CmdKind::StoreGc => self.store.gc(),
            CmdKind::TableSet { table, index, v } => {
                let t = self.table(*table)?;
                let (v, m) = self.arg(*v);
                let got = t.set(&mut self.store, *index, v).is_ok();
                let mt = self.model.table(p, *table);
                let want = (*index as usize) < mt.elems.len();
                if want {
                    mt.elems[*index as usize] = m;
                }
                if got != want {
                    return Err(format!("Table::set: ok {got}, the model says {want}"));
                }
            }
            CmdKind::TableGet { table, index } => {
                let t = self.table(*table)?;
                let got = t.get(&mut self.store, *index);
                let want = self
                    .model
                    .table(p, *table)
                    .elems
                    .get(*index as usize)
                    .copied();
                match (got, want) {
                    (None, None) => {}
                    (Some(g), Some(w)) => self.same("Table::get", &g, w)?,
                    (g, w) => return Err(format!("Table::get: {g:?}, the model says {w:?}")),
                }
            }
            CmdKind::TableGrow { table, delta, v } => {
                let t = self.table(*table)?;
                let (v, m) = self.arg(*v);
                let got = t.grow(&mut self.store, *delta, v).ok();
                let want = self.model.table(p, *table).grow(*delta, m);
                if got != want {
                    return Err(format!("Table::grow: {got:?}, the model says {want:?}"));
                }
            }
            CmdKind::GlobalSet { global, v } => {
                let g = self.global(*global)?;
                let (v, m) = self.arg(*v);
                g.set(&mut self.store, v)
                    .map_err(|e| format!("Global::set: {e}"))?;
                *self.model.global(p, *global) = m;
            }
            CmdKind::GlobalGet { global } => {
                let g = self.global(*global)?;
                let v = g.get(&mut self.store);
                let want = *self.model.global(p, *global);
                self.same("Global::get", &v, want)?;
            }
            CmdKind::DropSlot { slot } => {
                let old = lock(&self.host).slots[*slot as usize].take();
                drop(old);
                self.model.slots[*slot as usize] = None;
            }
            CmdKind::CheckAll => self.check_all()?,
        }
        Ok(())
    }

    /// Every table (through the main module's exports, which re-export the
    /// imported ones, and through the provider's) and every global.
    fn check_all(&mut self) -> Result<(), String> {
        let p = self.p;
        let mut handles: Vec<(String, Table, TableId)> = Vec::new();
        for (i, id) in p.tables.iter().enumerate() {
            handles.push((format!("tab{i}"), self.table(i as u32)?, *id));
        }
        for j in 0..p.prov_tables.len() {
            let t = self
                .prov
                .get_table(&mut self.store, &format!("t{j}"))
                .ok_or("provider export missing")?;
            handles.push((format!("prov t{j}"), t, TableId::Prov(j)));
        }
        for (name, t, id) in handles {
            let want = self.model.tables[&id].elems.clone();
            let size = t.size(&self.store);
            if size as usize != want.len() {
                return Err(format!(
                    "{name}: size {size}, the model says {}",
                    want.len()
                ));
            }
            for (k, w) in want.iter().enumerate() {
                let v = t
                    .get(&mut self.store, k as u32)
                    .ok_or_else(|| format!("{name}[{k}] out of bounds"))?;
                self.same(&format!("{name}[{k}]"), &v, *w)?;
            }
        }
        for g in 0..p.globals.len() as u32 {
            let h = self.global(g)?;
            let v = h.get(&mut self.store);
            let want = *self.model.global(p, g);
            self.same(&format!("glob{g}"), &v, want)?;
        }
        Ok(())
    }
}
