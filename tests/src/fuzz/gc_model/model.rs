//! The oracle: an exact model of every externref table, global, passive
//! element segment and host slot, and a simulator of the main module's
//! functions that predicts every host call they make ([`Event`]) and their
//! result or trap.
//!
//! References are host values named by id (`None` is null). The simulator
//! follows the evaluation order of the flat code [`super::wat`] emits.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// A reference: a host value's id, or null.
pub type Ref = Option<u32>;

/// A host call the Wasm code must make, in order, with what it must pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `make(site)`: the host creates value `id`.
    Make { site: u32, id: u32 },
    /// `check(r, site)`: `r` must be `expect`.
    Check { site: u32, expect: Ref },
    /// `check_i32(v, site)`: `v` must be `expect`.
    CheckI32 { site: u32, expect: i32 },
    /// `gc(site)`: the host collects.
    Gc { site: u32 },
    /// `keep(r, slot, site)`: `r` must be `value`; the host keeps it.
    Keep { site: u32, slot: u32, value: Ref },
    /// `take(slot, site)`: the host returns its slot, which holds `value`.
    Take { site: u32, slot: u32, value: Ref },
    /// `echo(r, site)`: `r` must be `value`; the host returns it.
    Echo { site: u32, value: Ref },
}

/// Wasm trapped (every trap the programs can raise is an out-of-bounds
/// table access).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trapped;

/// A modelled table.
#[derive(Clone, Debug)]
pub struct MTable {
    /// Elements.
    pub elems: Vec<Ref>,
    /// Maximum size.
    pub max: Option<u32>,
}

impl MTable {
    fn new(d: &TableDecl, init: Ref) -> MTable {
        MTable {
            elems: vec![init; d.min as usize],
            max: d.max,
        }
    }

    /// `table.grow` / `Table::grow`: the old size, or `None` if it fails.
    pub fn grow(&mut self, delta: u32, init: Ref) -> Option<u32> {
        let old = self.elems.len() as u64;
        let new = old + u64::from(delta);
        let limit = self.max.unwrap_or(u32::MAX).min(TABLE_LIMIT);
        if new > u64::from(limit) {
            return None;
        }
        self.elems.resize(new as usize, init);
        Some(old as u32)
    }

    fn range(&self, start: u32, len: u32) -> Result<std::ops::Range<usize>, Trapped> {
        let end = u64::from(start) + u64::from(len);
        if end > self.elems.len() as u64 {
            return Err(Trapped);
        }
        Ok(start as usize..end as usize)
    }
}

/// The modelled store.
#[derive(Clone, Debug)]
pub struct Model {
    /// Every table.
    pub tables: BTreeMap<TableId, MTable>,
    /// Every mutable externref global.
    pub globals: BTreeMap<GlobalId, Ref>,
    /// The main module's passive segments (`None` once dropped).
    pub segs: Vec<Option<Vec<Ref>>>,
    /// The host's slots.
    pub slots: Vec<Ref>,
    /// The value of the host's immutable global `gseg`.
    pub gseg: u32,
    /// The next host value's id.
    pub next_id: u32,
}

impl Model {
    /// The state right after instantiation; `gseg` is the id of the host
    /// global's value, and ids from `gseg + 1` are free.
    pub fn new(p: &Program, gseg: u32) -> Model {
        let item = |i: &SegItem| match i {
            SegItem::Null => None,
            SegItem::GSeg => Some(gseg),
        };
        let mut tables = BTreeMap::new();
        for (i, d) in p.prov_tables.iter().enumerate() {
            tables.insert(TableId::Prov(i), MTable::new(d, None));
        }
        for (i, (d, filled)) in p.host_tables.iter().enumerate() {
            let init = if *filled { Some(gseg) } else { None };
            tables.insert(TableId::Host(i), MTable::new(d, init));
        }
        for (i, d) in p.main_tables.iter().enumerate() {
            tables.insert(TableId::Main(i), MTable::new(d, None));
        }
        for a in &p.active {
            let t = tables.get_mut(&TableId::Main(a.table)).expect("main table");
            for (k, it) in a.items.iter().enumerate() {
                t.elems[a.offset as usize + k] = item(it);
            }
        }
        let mut globals = BTreeMap::new();
        for i in 0..p.prov_globals {
            globals.insert(GlobalId::Prov(i), None);
        }
        for (i, init) in p.main_globals.iter().enumerate() {
            globals.insert(GlobalId::Main(i), item(init));
        }
        Model {
            tables,
            globals,
            segs: p
                .segments
                .iter()
                .map(|s| Some(s.iter().map(item).collect()))
                .collect(),
            slots: vec![None; SLOTS as usize],
            gseg,
            next_id: gseg + 1,
        }
    }

    /// A new host value's id.
    pub fn fresh_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Table `t` of the main module's index space.
    pub fn table(&mut self, p: &Program, t: u32) -> &mut MTable {
        self.tables
            .get_mut(&p.tables[t as usize])
            .expect("every table is modelled")
    }

    /// Global `g` of the main module's index space.
    pub fn global(&mut self, p: &Program, g: u32) -> &mut Ref {
        self.globals
            .get_mut(&p.globals[g as usize])
            .expect("every global is modelled")
    }

    /// Every id the store or the host holds: exactly the host values that
    /// must be alive when no Wasm is running.
    pub fn reachable(&self) -> BTreeSet<u32> {
        let mut s = BTreeSet::new();
        s.insert(self.gseg);
        let all = self
            .tables
            .values()
            .flat_map(|t| t.elems.iter())
            .chain(self.globals.values())
            .chain(self.segs.iter().flatten().flatten())
            .chain(self.slots.iter());
        s.extend(all.flatten());
        s
    }

    /// Simulates a call of `f{func}` with parameters `args`: the host calls
    /// it must make, then its result or the trap.
    pub fn call(
        &mut self,
        p: &Program,
        func: u32,
        args: [Ref; 2],
    ) -> (Vec<Event>, Result<Ref, Trapped>) {
        let f = &p.funcs[func as usize];
        let mut locals = vec![None; 3 + p.ref_locals as usize];
        locals[1] = args[0];
        locals[2] = args[1];
        let mut sim = Sim {
            m: self,
            p,
            events: Vec::new(),
            locals,
        };
        let r = sim.stmts(&f.body).and_then(|()| sim.expr(&f.result));
        (sim.events, r)
    }
}

struct Sim<'a> {
    m: &'a mut Model,
    p: &'a Program,
    events: Vec<Event>,
    locals: Vec<Ref>,
}

type R<T> = Result<T, Trapped>;

impl Sim<'_> {
    fn expr(&mut self, e: &RefExpr) -> R<Ref> {
        Ok(match e {
            RefExpr::Null => None,
            RefExpr::Make { site } => {
                let id = self.m.fresh_id();
                self.events.push(Event::Make { site: *site, id });
                Some(id)
            }
            RefExpr::Local(l) => self.locals[*l as usize],
            RefExpr::Global(g) => *self.m.global(self.p, *g),
            RefExpr::TableGet { table, index } => {
                let t = self.m.table(self.p, *table);
                *t.elems.get(*index as usize).ok_or(Trapped)?
            }
            RefExpr::Select { a, b, cond } => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                if *cond {
                    a
                } else {
                    b
                }
            }
            RefExpr::Block(a) => self.expr(a)?,
            RefExpr::If { cond, a, b } => {
                if *cond {
                    self.expr(a)?
                } else {
                    self.expr(b)?
                }
            }
            RefExpr::IfParam { a, cond, b } => {
                let a = self.expr(a)?;
                if *cond {
                    a
                } else {
                    self.expr(b)?
                }
            }
            RefExpr::BrIf { a, cond, b } => {
                let a = self.expr(a)?;
                if *cond {
                    a
                } else {
                    self.expr(b)?
                }
            }
            RefExpr::BrTable { a, k, b } => {
                let a = self.expr(a)?;
                if *k == 0 {
                    self.expr(b)?
                } else {
                    a
                }
            }
            RefExpr::LoopParam { a, iters, site } => {
                let a = self.expr(a)?;
                for _ in 0..*iters {
                    self.events.push(Event::Gc { site: *site });
                }
                a
            }
            RefExpr::Call(a) => {
                let a = self.expr(a)?;
                self.events.push(Event::Gc { site: SITE_PASS_GC });
                a
            }
            RefExpr::CallMany { args, pick } => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.expr(a)?);
                }
                self.events.push(Event::Gc { site: SITE_MANY_GC });
                for (i, v) in vals.iter().enumerate() {
                    self.events.push(Event::Check {
                        site: SITE_MANY_CHECK + i as u32,
                        expect: *v,
                    });
                }
                vals[*pick as usize]
            }
            RefExpr::CallIndirect { a, target } => {
                let a = self.expr(a)?;
                if *target == 0 {
                    self.events.push(Event::Gc { site: SITE_PASS_GC });
                }
                a
            }
            RefExpr::Recurse { a, depth } => {
                let a = self.expr(a)?;
                let mut made = Vec::with_capacity(*depth as usize);
                for _ in 0..*depth {
                    let id = self.m.fresh_id();
                    self.events.push(Event::Make {
                        site: SITE_REC_MAKE,
                        id,
                    });
                    made.push(id);
                }
                self.events.push(Event::Gc { site: SITE_REC_GC });
                for id in made.into_iter().rev() {
                    self.events.push(Event::Check {
                        site: SITE_REC_CHECK,
                        expect: Some(id),
                    });
                }
                a
            }
            RefExpr::Take { slot, site } => {
                let value = self.m.slots[*slot as usize];
                self.events.push(Event::Take {
                    site: *site,
                    slot: *slot,
                    value,
                });
                value
            }
            RefExpr::Echo { a, site } => {
                let value = self.expr(a)?;
                self.events.push(Event::Echo { site: *site, value });
                value
            }
        })
    }

    fn stmts(&mut self, s: &[Stmt]) -> R<()> {
        for s in s {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> R<()> {
        let p = self.p;
        match &s.kind {
            StmtKind::Check { e, site } => {
                let expect = self.expr(e)?;
                self.events.push(Event::Check {
                    site: *site,
                    expect,
                });
            }
            StmtKind::TableSet { table, index, e } => {
                let v = self.expr(e)?;
                let t = self.m.table(p, *table);
                *t.elems.get_mut(*index as usize).ok_or(Trapped)? = v;
            }
            StmtKind::TableFill { table, dst, e, len } => {
                let v = self.expr(e)?;
                let t = self.m.table(p, *table);
                let r = t.range(*dst, *len)?;
                t.elems[r].fill(v);
            }
            StmtKind::TableGrow {
                table,
                e,
                delta,
                site,
            } => {
                let v = self.expr(e)?;
                let r = self.m.table(p, *table).grow(*delta, v);
                self.events.push(Event::CheckI32 {
                    site: *site,
                    expect: r.map_or(-1, |old| old as i32),
                });
            }
            StmtKind::TableSize { table, site } => {
                let n = self.m.table(p, *table).elems.len();
                self.events.push(Event::CheckI32 {
                    site: *site,
                    expect: n as i32,
                });
            }
            StmtKind::TableCopy {
                dst_table,
                src_table,
                dst,
                src,
                len,
            } => {
                let sr = self.m.table(p, *src_table).range(*src, *len)?;
                let items = self.m.table(p, *src_table).elems[sr].to_vec();
                let d = self.m.table(p, *dst_table);
                let dr = d.range(*dst, *len)?;
                d.elems[dr].copy_from_slice(&items);
            }
            StmtKind::TableInit {
                table,
                seg,
                dst,
                src,
                len,
            } => {
                let items = self.m.segs[*seg as usize].clone().unwrap_or_default();
                let end = u64::from(*src) + u64::from(*len);
                if end > items.len() as u64 {
                    return Err(Trapped);
                }
                let t = self.m.table(p, *table);
                let dr = t.range(*dst, *len)?;
                t.elems[dr].copy_from_slice(&items[*src as usize..end as usize]);
            }
            StmtKind::ElemDrop { seg } => self.m.segs[*seg as usize] = None,
            StmtKind::GlobalSet { global, e } => {
                let v = self.expr(e)?;
                *self.m.global(p, *global) = v;
            }
            StmtKind::LocalSet { local, e } => {
                let v = self.expr(e)?;
                self.locals[*local as usize] = v;
            }
            StmtKind::Keep { slot, e, site } => {
                let value = self.expr(e)?;
                self.events.push(Event::Keep {
                    site: *site,
                    slot: *slot,
                    value,
                });
                self.m.slots[*slot as usize] = value;
            }
            StmtKind::Gc { site } => self.events.push(Event::Gc { site: *site }),
            StmtKind::Churn { .. } => {}
            StmtKind::Loop { iters, body } => {
                for _ in 0..*iters {
                    self.stmts(body)?;
                }
            }
            StmtKind::If { cond, then, els } => {
                if *cond {
                    self.stmts(then)?
                } else {
                    self.stmts(els)?
                }
            }
            StmtKind::Block {
                first,
                cond,
                second,
            } => {
                self.stmts(first)?;
                if !*cond {
                    self.stmts(second)?;
                }
            }
            StmtKind::Drop(e) => {
                self.expr(e)?;
            }
        }
        Ok(())
    }
}
