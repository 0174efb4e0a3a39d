//! Model-based testing of the externref collector, in the spirit of
//! Wasmtime's `table_ops` fuzz target.
//!
//! A seed gives a [`Program`]: a provider module that defines and exports
//! externref tables and globals, host tables, and a main module that imports
//! them (some twice, so that two table indices alias one table), defines its
//! own, re-exports everything, and has exported functions whose bodies are
//! random statements over tables, globals, locals, element segments and host
//! functions; then a list of host-side commands ([`Cmd`]) that call those
//! functions and touch the tables and globals through the API.
//!
//! The oracle ([`model`]) is an exact model of every table, global, element
//! segment and host slot. It simulates each command before it runs and
//! predicts the exact sequence of host calls the Wasm code makes ([`Event`](model::Event):
//! `make`, `check`, `gc`, ...), each with the reference it must see, and
//! the command's result or trap. The harness ([`run`]) answers the host calls
//! from that queue, and its host values count their drops: a value freed
//! while the model says it is reachable, a value never freed, a double free,
//! or a value whose identity is wrong (a generation check on every
//! reference the host sees) is a failure.
//!
//! Collections are forced everywhere: a `gc` host call, churn loops that fill
//! the activations table until the inline fast path collects, host calls with
//! many live references, deep recursion, and the store's stress mode.
//!
//! Every statement and command has a node number ([`Program::node_count`]);
//! a failing program is minimized by removing nodes
//! ([`Program::without`]), which the model follows automatically because
//! the expectations are computed by simulation, not stored in the program.

pub mod model;
pub mod run;
pub mod wat;

use super::Rng;
use std::collections::BTreeSet;

/// Ref parameters of the `$many` helper: more than fit in argument
/// registers on any supported target, so some arrive on the stack.
pub const MANY: usize = 12;
/// Host slots: references the host holds between calls.
pub const SLOTS: u32 = 4;
/// The store's table-element limit the harness sets (grows past it fail).
pub const TABLE_LIMIT: u32 = 10_000;

/// Sites of the helper functions' host calls (program sites start above).
pub const SITE_PASS_GC: u32 = 1;
/// `$many`'s collection.
pub const SITE_MANY_GC: u32 = 2;
/// `$many`'s checks of its parameters: `SITE_MANY_CHECK + i`.
pub const SITE_MANY_CHECK: u32 = 10;
/// `$rec`'s per-frame reference.
pub const SITE_REC_MAKE: u32 = 3;
/// `$rec`'s collection at the bottom.
pub const SITE_REC_GC: u32 = 4;
/// `$rec`'s check of its frame's reference after the recursive call.
pub const SITE_REC_CHECK: u32 = 5;
/// First site of program nodes.
pub const SITE_FIRST: u32 = 100;

/// Limits of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableDecl {
    /// Initial size.
    pub min: u32,
    /// Maximum, if any.
    pub max: Option<u32>,
}

/// A table of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableId {
    /// Defined by the provider module.
    Prov(usize),
    /// Created by the host with `Table::new`.
    Host(usize),
    /// Defined by the main module.
    Main(usize),
}

/// A mutable externref global of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GlobalId {
    /// Defined by the provider module.
    Prov(usize),
    /// Defined by the main module.
    Main(usize),
}

/// An element-segment item or a global's initializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegItem {
    /// `ref.null extern`
    Null,
    /// `global.get $gseg`: the host's immutable global (never null).
    GSeg,
}

/// An active segment of the main module, applied at instantiation.
#[derive(Clone, Debug)]
pub struct Active {
    /// Index into [`Program::main_tables`].
    pub table: usize,
    /// Offset (always in bounds).
    pub offset: u32,
    /// Items.
    pub items: Vec<SegItem>,
}

/// An expression that produces one externref.
#[derive(Clone, Debug)]
pub enum RefExpr {
    /// `ref.null extern`
    Null,
    /// A new host value (`make`).
    Make { site: u32 },
    /// `local.get` (1 and 2 are the parameters).
    Local(u32),
    /// `global.get` of a mutable externref global.
    Global(u32),
    /// `table.get` at a constant index (may trap).
    TableGet { table: u32, index: u32 },
    /// Typed `select`: both operands are evaluated.
    Select {
        a: Box<RefExpr>,
        b: Box<RefExpr>,
        cond: bool,
    },
    /// `block (result externref)`.
    Block(Box<RefExpr>),
    /// `a`, then `if (param externref) (result externref)`: the then arm
    /// passes its parameter through, the else arm drops it for `b`.
    IfParam {
        a: Box<RefExpr>,
        cond: bool,
        b: Box<RefExpr>,
    },
    /// `if (result externref)`.
    If {
        cond: bool,
        a: Box<RefExpr>,
        b: Box<RefExpr>,
    },
    /// `block`: `a`, `br_if` out with it, else drop it and evaluate `b`.
    BrIf {
        a: Box<RefExpr>,
        cond: bool,
        b: Box<RefExpr>,
    },
    /// Two nested blocks and a `br_table` carrying `a`: index 0 falls into
    /// the inner block (drop, `b`), any other leaves with `a`.
    BrTable {
        a: Box<RefExpr>,
        k: u32,
        b: Box<RefExpr>,
    },
    /// A `loop (param externref) (result externref)` carrying `a` around
    /// `iters` times, collecting in every iteration.
    LoopParam {
        a: Box<RefExpr>,
        iters: u32,
        site: u32,
    },
    /// `call $pass` (collects, returns its argument).
    Call(Box<RefExpr>),
    /// `call $many` with [`MANY`] references, returning `args[pick]`.
    CallMany { args: Vec<RefExpr>, pick: u32 },
    /// `call_indirect` to `$pass` (0) or `$pass_churn` (1).
    CallIndirect { a: Box<RefExpr>, target: u32 },
    /// `call $rec`: `depth` frames each holding a reference of its own.
    Recurse { a: Box<RefExpr>, depth: u32 },
    /// The host's slot (`take`).
    Take { slot: u32, site: u32 },
    /// Through the host and back (`echo`).
    Echo { a: Box<RefExpr>, site: u32 },
}

/// A statement of a function body. `id` is the node number.
#[derive(Clone, Debug)]
pub struct Stmt {
    /// Node number, unique in the program.
    pub id: u32,
    /// What it does.
    pub kind: StmtKind,
}

/// The statements.
#[derive(Clone, Debug)]
pub enum StmtKind {
    /// `check`: the host verifies the reference's identity.
    Check { e: RefExpr, site: u32 },
    /// `table.set`.
    TableSet { table: u32, index: u32, e: RefExpr },
    /// `table.fill`.
    TableFill {
        table: u32,
        dst: u32,
        e: RefExpr,
        len: u32,
    },
    /// `table.grow`, result checked.
    TableGrow {
        table: u32,
        e: RefExpr,
        delta: u32,
        site: u32,
    },
    /// `table.size`, checked.
    TableSize { table: u32, site: u32 },
    /// `table.copy`.
    TableCopy {
        dst_table: u32,
        src_table: u32,
        dst: u32,
        src: u32,
        len: u32,
    },
    /// `table.init` from a passive segment.
    TableInit {
        table: u32,
        seg: u32,
        dst: u32,
        src: u32,
        len: u32,
    },
    /// `elem.drop`.
    ElemDrop { seg: u32 },
    /// `global.set`.
    GlobalSet { global: u32, e: RefExpr },
    /// `local.set`.
    LocalSet { local: u32, e: RefExpr },
    /// The host keeps the reference in a slot (`keep`).
    Keep { slot: u32, e: RefExpr, site: u32 },
    /// A collection (`gc` host call).
    Gc { site: u32 },
    /// `call $churn`: `n` `global.get`s, so the inline insertion fills the
    /// activations table and collects from compiled code.
    Churn { n: u32 },
    /// A loop running `body` `iters` times.
    Loop { iters: u32, body: Vec<Stmt> },
    /// `if`/`else`.
    If {
        cond: bool,
        then: Vec<Stmt>,
        els: Vec<Stmt>,
    },
    /// `block`: `first`, a `br_if` out, then `second`.
    Block {
        first: Vec<Stmt>,
        cond: bool,
        second: Vec<Stmt>,
    },
    /// `drop`.
    Drop(RefExpr),
}

/// An exported function `f{i}: (i32 p, externref, externref) -> externref`,
/// called with `p = 1` (conditions read `p`, so none is constant).
#[derive(Clone, Debug)]
pub struct Func {
    /// Body.
    pub body: Vec<Stmt>,
    /// The result.
    pub result: RefExpr,
}

/// Where the host takes a reference from.
#[derive(Clone, Copy, Debug)]
pub enum ArgSrc {
    /// Null.
    Null,
    /// A new host value.
    New,
    /// A clone of a host slot.
    Slot(u32),
}

/// A host-side command. `id` is the node number.
#[derive(Clone, Debug)]
pub struct Cmd {
    /// Node number, unique in the program.
    pub id: u32,
    /// What it does.
    pub kind: CmdKind,
}

/// The commands.
#[derive(Clone, Debug)]
pub enum CmdKind {
    /// Call `f{func}` with two references; its result is checked.
    Call { func: u32, args: [ArgSrc; 2] },
    /// `Store::gc` from the host.
    StoreGc,
    /// `Table::set` through the main module's export `tab{table}`.
    TableSet { table: u32, index: u32, v: ArgSrc },
    /// `Table::get`, checked.
    TableGet { table: u32, index: u32 },
    /// `Table::grow`, checked.
    TableGrow { table: u32, delta: u32, v: ArgSrc },
    /// `Global::set` through `glob{global}`.
    GlobalSet { global: u32, v: ArgSrc },
    /// `Global::get`, checked.
    GlobalGet { global: u32 },
    /// The host drops a slot's reference.
    DropSlot { slot: u32 },
    /// Every table and global checked through the API.
    CheckAll,
}

/// A generated program (see the module docs).
#[derive(Clone, Debug)]
pub struct Program {
    /// The seed it came from.
    pub seed: u64,
    /// Compile with `OptLevel::Speed` (else `None`).
    pub speed: bool,
    /// The store's GC stress mode.
    pub stress: bool,
    /// The provider's tables, exported as `t{i}`.
    pub prov_tables: Vec<TableDecl>,
    /// The provider's mutable externref globals (`g{i}`, null at first).
    pub prov_globals: usize,
    /// Host tables `ht{i}`; `true`: every element starts as `$gseg`'s value.
    pub host_tables: Vec<(TableDecl, bool)>,
    /// The main module's own externref tables.
    pub main_tables: Vec<TableDecl>,
    /// The main module's externref table index space: imports, then
    /// `Main(0..)`. An import may repeat (two indices, one table).
    pub tables: Vec<TableId>,
    /// Initializers of the main module's own mutable externref globals.
    pub main_globals: Vec<SegItem>,
    /// The main module's mutable externref global index space.
    pub globals: Vec<GlobalId>,
    /// Passive externref segments.
    pub segments: Vec<Vec<SegItem>>,
    /// Active segments.
    pub active: Vec<Active>,
    /// Extra externref locals of every function (after the parameters).
    pub ref_locals: u32,
    /// Exported functions.
    pub funcs: Vec<Func>,
    /// Host commands, in order.
    pub cmds: Vec<Cmd>,
}

/// Generation state: sizes only grow, so an index below a table's initial
/// size is always in bounds; the generator uses mostly those.
struct Gen {
    rng: Rng,
    next_site: u32,
    next_node: u32,
    /// Initial size of each table index.
    sizes: Vec<u32>,
    globals: u32,
    segs: Vec<u32>,
    locals: u32,
    /// Loop-nesting budget of the statement being generated.
    depth: u32,
}

impl Gen {
    fn site(&mut self) -> u32 {
        self.next_site += 1;
        self.next_site
    }

    fn node(&mut self) -> u32 {
        let n = self.next_node;
        self.next_node += 1;
        n
    }

    fn table(&mut self) -> u32 {
        self.rng.below(self.sizes.len() as u32)
    }

    /// An index in `table`: usually in its initial range, sometimes past it.
    fn index(&mut self, table: u32) -> u32 {
        let size = self.sizes[table as usize];
        if size > 0 && self.rng.chance(9, 10) {
            self.rng.below(size)
        } else {
            self.rng.below(size + 3)
        }
    }

    /// A range length for `table` from `start`.
    fn len(&mut self, size: u32, start: u32) -> u32 {
        match self.rng.below(10) {
            0 => 0,
            1 => self.rng.below(4) + size.saturating_sub(start),
            _ => self.rng.below(size.saturating_sub(start) + 1),
        }
    }

    fn ref_expr(&mut self, depth: u32) -> RefExpr {
        let leaf = depth == 0 || self.rng.chance(1, 2);
        if leaf {
            return match self.rng.below(9) {
                0 => RefExpr::Null,
                1 | 2 => RefExpr::Make { site: self.site() },
                3 | 4 => RefExpr::Local(1 + self.rng.below(2 + self.locals)),
                5 if self.globals > 0 => RefExpr::Global(self.rng.below(self.globals)),
                6 => RefExpr::Take {
                    slot: self.rng.below(SLOTS),
                    site: self.site(),
                },
                _ => {
                    let table = self.table();
                    RefExpr::TableGet {
                        table,
                        index: self.index(table),
                    }
                }
            };
        }
        let d = depth - 1;
        match self.rng.below(12) {
            0 => RefExpr::Select {
                a: Box::new(self.ref_expr(d)),
                b: Box::new(self.ref_expr(d)),
                cond: self.rng.chance(1, 2),
            },
            1 => RefExpr::Block(Box::new(self.ref_expr(d))),
            2 => RefExpr::If {
                cond: self.rng.chance(1, 2),
                a: Box::new(self.ref_expr(d)),
                b: Box::new(self.ref_expr(d)),
            },
            3 => RefExpr::BrIf {
                a: Box::new(self.ref_expr(d)),
                cond: self.rng.chance(1, 2),
                b: Box::new(self.ref_expr(d)),
            },
            4 => RefExpr::BrTable {
                a: Box::new(self.ref_expr(d)),
                k: self.rng.below(3),
                b: Box::new(self.ref_expr(d)),
            },
            5 => RefExpr::LoopParam {
                a: Box::new(self.ref_expr(d)),
                iters: self.rng.range(1, 3),
                site: self.site(),
            },
            6 => RefExpr::Call(Box::new(self.ref_expr(d))),
            7 => RefExpr::CallMany {
                args: (0..MANY).map(|_| self.ref_expr(d.min(1))).collect(),
                pick: self.rng.below(MANY as u32),
            },
            8 => RefExpr::CallIndirect {
                a: Box::new(self.ref_expr(d)),
                target: self.rng.below(2),
            },
            11 => RefExpr::IfParam {
                a: Box::new(self.ref_expr(d)),
                cond: self.rng.chance(1, 2),
                b: Box::new(self.ref_expr(d)),
            },
            9 => RefExpr::Recurse {
                a: Box::new(self.ref_expr(d)),
                depth: if self.rng.chance(1, 8) {
                    self.rng.range(50, 300)
                } else {
                    self.rng.range(0, 6)
                },
            },
            _ => RefExpr::Echo {
                a: Box::new(self.ref_expr(d)),
                site: self.site(),
            },
        }
    }

    fn expr(&mut self) -> RefExpr {
        let d = self.rng.below(4);
        self.ref_expr(d)
    }

    fn stmts(&mut self, n: u32) -> Vec<Stmt> {
        (0..n).map(|_| self.stmt()).collect()
    }

    fn stmt(&mut self) -> Stmt {
        let id = self.node();
        let kind = match self.rng.below(30) {
            0..=3 => StmtKind::Check {
                e: self.expr(),
                site: self.site(),
            },
            4..=6 => {
                let table = self.table();
                let index = self.index(table);
                // Often a fresh value, so that tables hold distinct values
                // whose only count is their slot (what an aliasing bug in
                // a multi-element operation frees).
                let e = if self.rng.chance(1, 2) {
                    RefExpr::Make { site: self.site() }
                } else {
                    self.expr()
                };
                StmtKind::TableSet { table, index, e }
            }
            7 => {
                let table = self.table();
                let dst = self.index(table);
                let len = self.len(self.sizes[table as usize], dst);
                StmtKind::TableFill {
                    table,
                    dst,
                    e: self.expr(),
                    len,
                }
            }
            8 => StmtKind::TableGrow {
                table: self.table(),
                e: self.expr(),
                delta: match self.rng.below(8) {
                    0 => 0,
                    1 => 0x7fff_fff0,
                    2 => TABLE_LIMIT,
                    _ => self.rng.range(1, 4),
                },
                site: self.site(),
            },
            9 => StmtKind::TableSize {
                table: self.table(),
                site: self.site(),
            },
            10..=12 => {
                let (dst_table, src_table) = if self.rng.chance(1, 2) {
                    let t = self.table();
                    (t, t)
                } else {
                    (self.table(), self.table())
                };
                let (ds, ss) = (
                    self.sizes[dst_table as usize],
                    self.sizes[src_table as usize],
                );
                let dst = self.index(dst_table);
                let src = if dst_table == src_table && ds > 1 && self.rng.chance(2, 3) {
                    // Overlapping ranges, in either direction.
                    let near = self.rng.range(1, 2);
                    if self.rng.chance(1, 2) {
                        dst.saturating_sub(near)
                    } else {
                        (dst + near).min(ds - 1)
                    }
                } else {
                    self.index(src_table)
                };
                let len = self.len(ds.min(ss), dst.max(src));
                StmtKind::TableCopy {
                    dst_table,
                    src_table,
                    dst,
                    src,
                    len,
                }
            }
            13 if !self.segs.is_empty() => {
                let table = self.table();
                let seg = self.rng.below(self.segs.len() as u32);
                let seg_len = self.segs[seg as usize];
                let src = self.rng.below(seg_len + 1);
                let dst = self.index(table);
                let len = self.len(seg_len.min(self.sizes[table as usize]), src.max(dst));
                StmtKind::TableInit {
                    table,
                    seg,
                    dst,
                    src,
                    len,
                }
            }
            14 if !self.segs.is_empty() && self.rng.chance(1, 3) => StmtKind::ElemDrop {
                seg: self.rng.below(self.segs.len() as u32),
            },
            15 if self.globals > 0 => StmtKind::GlobalSet {
                global: self.rng.below(self.globals),
                e: self.expr(),
            },
            16..=18 => StmtKind::LocalSet {
                local: 1 + self.rng.below(2 + self.locals),
                e: self.expr(),
            },
            19 => StmtKind::Keep {
                slot: self.rng.below(SLOTS),
                e: self.expr(),
                site: self.site(),
            },
            20 | 21 => StmtKind::Gc { site: self.site() },
            22 => StmtKind::Churn {
                n: self.rng.range(200, 1500),
            },
            23..=25 if self.depth > 0 => {
                self.depth -= 1;
                let n = self.rng.range(1, 4);
                let s = StmtKind::Loop {
                    iters: self.rng.range(1, 4),
                    body: self.stmts(n),
                };
                self.depth += 1;
                s
            }
            26..=28 if self.depth > 0 => {
                self.depth -= 1;
                let (a, b) = (self.rng.range(0, 3), self.rng.range(0, 3));
                let s = if self.rng.chance(1, 2) {
                    StmtKind::If {
                        cond: self.rng.chance(1, 2),
                        then: self.stmts(a),
                        els: self.stmts(b),
                    }
                } else {
                    StmtKind::Block {
                        first: self.stmts(a),
                        cond: self.rng.chance(1, 2),
                        second: self.stmts(b),
                    }
                };
                self.depth += 1;
                s
            }
            _ => StmtKind::Drop(self.expr()),
        };
        Stmt { id, kind }
    }

    fn arg(&mut self) -> ArgSrc {
        match self.rng.below(4) {
            0 => ArgSrc::Null,
            1 | 2 => ArgSrc::New,
            _ => ArgSrc::Slot(self.rng.below(SLOTS)),
        }
    }

    fn cmd(&mut self, funcs: u32) -> Cmd {
        let id = self.node();
        let kind = match self.rng.below(16) {
            0..=7 => CmdKind::Call {
                func: self.rng.below(funcs),
                args: [self.arg(), self.arg()],
            },
            8 => CmdKind::StoreGc,
            9 => {
                let table = self.table();
                CmdKind::TableSet {
                    table,
                    index: self.index(table),
                    v: self.arg(),
                }
            }
            10 => {
                let table = self.table();
                CmdKind::TableGet {
                    table,
                    index: self.index(table),
                }
            }
            11 => CmdKind::TableGrow {
                table: self.table(),
                delta: if self.rng.chance(1, 4) {
                    TABLE_LIMIT
                } else {
                    self.rng.below(3)
                },
                v: self.arg(),
            },
            12 if self.globals > 0 => CmdKind::GlobalSet {
                global: self.rng.below(self.globals),
                v: self.arg(),
            },
            13 if self.globals > 0 => CmdKind::GlobalGet {
                global: self.rng.below(self.globals),
            },
            14 => CmdKind::DropSlot {
                slot: self.rng.below(SLOTS),
            },
            _ => CmdKind::CheckAll,
        };
        Cmd { id, kind }
    }
}

fn table_decl(rng: &mut Rng) -> TableDecl {
    let min = if rng.chance(1, 6) { 0 } else { rng.range(1, 8) };
    let max = match rng.below(3) {
        0 => None,
        1 => Some(min),
        _ => Some(min + rng.below(6)),
    };
    TableDecl { min, max }
}

impl Program {
    /// The program of `seed`.
    pub fn generate(seed: u64) -> Program {
        let mut rng = Rng::new(seed);
        let prov_tables: Vec<TableDecl> = (0..rng.below(3)).map(|_| table_decl(&mut rng)).collect();
        let prov_globals = rng.below(3) as usize;
        let host_tables: Vec<(TableDecl, bool)> = (0..rng.below(2))
            .map(|_| (table_decl(&mut rng), rng.chance(1, 2)))
            .collect();
        let main_tables: Vec<TableDecl> =
            (0..rng.range(1, 3)).map(|_| table_decl(&mut rng)).collect();

        // Imports (a provider table may be imported twice), then our own.
        let mut tables = Vec::new();
        for i in 0..prov_tables.len() {
            for _ in 0..rng.range(1, 2) {
                tables.push(TableId::Prov(i));
            }
        }
        for i in 0..host_tables.len() {
            tables.push(TableId::Host(i));
        }
        tables.extend((0..main_tables.len()).map(TableId::Main));
        let decl = |t: TableId| match t {
            TableId::Prov(i) => prov_tables[i],
            TableId::Host(i) => host_tables[i].0,
            TableId::Main(i) => main_tables[i],
        };
        let sizes: Vec<u32> = tables.iter().map(|t| decl(*t).min).collect();

        let item = |rng: &mut Rng| {
            if rng.chance(1, 3) {
                SegItem::Null
            } else {
                SegItem::GSeg
            }
        };
        let main_globals: Vec<SegItem> = (0..rng.below(3)).map(|_| item(&mut rng)).collect();
        let mut globals: Vec<GlobalId> = (0..prov_globals).map(GlobalId::Prov).collect();
        globals.extend((0..main_globals.len()).map(GlobalId::Main));

        let segments: Vec<Vec<SegItem>> = (0..rng.below(3))
            .map(|_| (0..rng.below(5)).map(|_| item(&mut rng)).collect())
            .collect();
        let mut active = Vec::new();
        for (ti, t) in main_tables.iter().enumerate() {
            if t.min > 0 && rng.chance(1, 2) {
                let offset = rng.below(t.min);
                let n = rng.below(t.min - offset + 1);
                active.push(Active {
                    table: ti,
                    offset,
                    items: (0..n).map(|_| item(&mut rng)).collect(),
                });
            }
        }

        let ref_locals = rng.below(4);
        let speed = rng.chance(1, 2);
        let stress = rng.chance(1, 2);
        let mut g = Gen {
            rng,
            next_site: SITE_FIRST,
            next_node: 0,
            sizes,
            globals: globals.len() as u32,
            segs: segments.iter().map(|s| s.len() as u32).collect(),
            locals: ref_locals,
            depth: 3,
        };
        let nfuncs = g.rng.range(1, 4);
        let funcs = (0..nfuncs)
            .map(|_| {
                let n = g.rng.range(2, 16);
                let mut body = g.stmts(n);
                if g.rng.chance(1, 2) {
                    // Check every reference local at the end: a local whose
                    // value a collection freed is caught here.
                    for local in 1..3 + g.locals {
                        let (id, site) = (g.node(), g.site());
                        body.push(Stmt {
                            id,
                            kind: StmtKind::Check {
                                e: RefExpr::Local(local),
                                site,
                            },
                        });
                    }
                }
                Func {
                    body,
                    result: g.expr(),
                }
            })
            .collect();
        let ncmds = g.rng.range(2, 14);
        let mut cmds: Vec<Cmd> = (0..ncmds).map(|_| g.cmd(nfuncs)).collect();
        // Every function is called at least once.
        for func in 0..nfuncs {
            let id = g.node();
            let args = [g.arg(), g.arg()];
            cmds.push(Cmd {
                id,
                kind: CmdKind::Call { func, args },
            });
        }
        Program {
            seed,
            speed,
            stress,
            prov_tables,
            prov_globals,
            host_tables,
            main_tables,
            tables,
            main_globals,
            globals,
            segments,
            active,
            ref_locals,
            funcs,
            cmds,
        }
    }

    /// One more than the largest node number.
    pub fn node_count(&self) -> u32 {
        fn stmts(s: &[Stmt], m: &mut u32) {
            for s in s {
                *m = (*m).max(s.id + 1);
                match &s.kind {
                    StmtKind::Loop { body, .. } => stmts(body, m),
                    StmtKind::If { then, els, .. } => {
                        stmts(then, m);
                        stmts(els, m);
                    }
                    StmtKind::Block { first, second, .. } => {
                        stmts(first, m);
                        stmts(second, m);
                    }
                    _ => {}
                }
            }
        }
        let mut m = 0;
        for f in &self.funcs {
            stmts(&f.body, &mut m);
        }
        for c in &self.cmds {
            m = m.max(c.id + 1);
        }
        m
    }

    /// Whether node `id` exists in this program.
    pub fn has_node(&self, id: u32) -> bool {
        fn find(s: &[Stmt], id: u32) -> bool {
            s.iter().any(|s| {
                s.id == id
                    || match &s.kind {
                        StmtKind::Loop { body, .. } => find(body, id),
                        StmtKind::If { then, els, .. } => find(then, id) || find(els, id),
                        StmtKind::Block { first, second, .. } => {
                            find(first, id) || find(second, id)
                        }
                        _ => false,
                    }
            })
        }
        self.cmds.iter().any(|c| c.id == id) || self.funcs.iter().any(|f| find(&f.body, id))
    }

    /// This program with only the statements and commands in `kept`.
    pub fn keeping(&self, kept: &BTreeSet<u32>) -> Program {
        let removed = (0..self.node_count())
            .filter(|n| !kept.contains(n))
            .collect();
        self.without(&removed)
    }

    /// This program without the statements and commands in `removed`.
    pub fn without(&self, removed: &BTreeSet<u32>) -> Program {
        fn prune(s: &[Stmt], removed: &BTreeSet<u32>) -> Vec<Stmt> {
            s.iter()
                .filter(|s| !removed.contains(&s.id))
                .map(|s| Stmt {
                    id: s.id,
                    kind: match &s.kind {
                        StmtKind::Loop { iters, body } => StmtKind::Loop {
                            iters: *iters,
                            body: prune(body, removed),
                        },
                        StmtKind::If { cond, then, els } => StmtKind::If {
                            cond: *cond,
                            then: prune(then, removed),
                            els: prune(els, removed),
                        },
                        StmtKind::Block {
                            first,
                            cond,
                            second,
                        } => StmtKind::Block {
                            first: prune(first, removed),
                            cond: *cond,
                            second: prune(second, removed),
                        },
                        k => k.clone(),
                    },
                })
                .collect()
        }
        let mut p = self.clone();
        for f in &mut p.funcs {
            f.body = prune(&f.body, removed);
        }
        p.cmds.retain(|c| !removed.contains(&c.id));
        p
    }
}
