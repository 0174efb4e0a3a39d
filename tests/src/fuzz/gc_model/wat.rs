//! The WebAssembly text of a [`Program`]: the provider module and the main
//! module. Bodies are emitted as flat instruction sequences, so the order of
//! evaluation is exactly the one [`super::model`] simulates.

use super::*;
use std::fmt::Write;

fn limits(t: &TableDecl) -> String {
    match t.max {
        Some(max) => format!("{} {max}", t.min),
        None => format!("{}", t.min),
    }
}

fn item(i: &SegItem) -> &'static str {
    match i {
        SegItem::Null => "(ref.null extern)",
        SegItem::GSeg => "(global.get $gseg)",
    }
}

/// The provider: tables `t{i}` and mutable globals `g{i}`, all exported.
pub fn provider(p: &Program) -> String {
    let mut s = String::from("(module\n");
    for (i, t) in p.prov_tables.iter().enumerate() {
        writeln!(s, "  (table (export \"t{i}\") {} externref)", limits(t)).unwrap();
    }
    for i in 0..p.prov_globals {
        writeln!(
            s,
            "  (global (export \"g{i}\") (mut externref) (ref.null extern))"
        )
        .unwrap();
    }
    s.push(')');
    s
}

struct Body {
    out: String,
    /// Next free local index (i32 loop counters are allocated on demand).
    next_local: u32,
    counters: u32,
}

impl Body {
    fn line(&mut self, text: impl AsRef<str>) {
        self.out.push_str("    ");
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }

    fn counter(&mut self) -> u32 {
        self.counters += 1;
        let l = self.next_local;
        self.next_local += 1;
        l
    }

    /// A runtime condition that is `c` (the function's `p` is 1).
    fn cond(&mut self, c: bool) {
        self.line("local.get $p");
        if !c {
            self.line("i32.eqz");
        }
    }

    fn expr(&mut self, e: &RefExpr) {
        match e {
            RefExpr::Null => self.line("ref.null extern"),
            RefExpr::Make { site } => {
                self.line(format!("i32.const {site}"));
                self.line("call $make");
            }
            RefExpr::Local(l) => self.line(format!("local.get {l}")),
            RefExpr::Global(g) => self.line(format!("global.get $g{g}")),
            RefExpr::TableGet { table, index } => {
                self.line(format!("i32.const {index}"));
                self.line(format!("table.get $t{table}"));
            }
            RefExpr::Select { a, b, cond } => {
                self.expr(a);
                self.expr(b);
                self.cond(*cond);
                self.line("select (result externref)");
            }
            RefExpr::Block(a) => {
                self.line("block (result externref)");
                self.expr(a);
                self.line("end");
            }
            RefExpr::If { cond, a, b } => {
                self.cond(*cond);
                self.line("if (result externref)");
                self.expr(a);
                self.line("else");
                self.expr(b);
                self.line("end");
            }
            RefExpr::IfParam { a, cond, b } => {
                self.expr(a);
                self.cond(*cond);
                self.line("if (param externref) (result externref)");
                self.line("else");
                self.line("drop");
                self.expr(b);
                self.line("end");
            }
            RefExpr::BrIf { a, cond, b } => {
                self.line("block (result externref)");
                self.expr(a);
                self.cond(*cond);
                self.line("br_if 0");
                self.line("drop");
                self.expr(b);
                self.line("end");
            }
            RefExpr::BrTable { a, k, b } => {
                self.line("block (result externref)");
                self.line("block (result externref)");
                self.expr(a);
                self.line("local.get $p");
                self.line(format!("i32.const {k}"));
                self.line("i32.mul");
                self.line("br_table 0 1 1");
                self.line("end");
                self.line("drop");
                self.expr(b);
                self.line("end");
            }
            RefExpr::LoopParam { a, iters, site } => {
                let c = self.counter();
                self.line(format!("i32.const {iters}"));
                self.line(format!("local.set {c}"));
                self.expr(a);
                self.line("loop (param externref) (result externref)");
                self.line(format!("i32.const {site}"));
                self.line("call $gc");
                self.line(format!("local.get {c}"));
                self.line("i32.const 1");
                self.line("i32.sub");
                self.line(format!("local.tee {c}"));
                self.line("br_if 0");
                self.line("end");
            }
            RefExpr::Call(a) => {
                self.expr(a);
                self.line("call $pass");
            }
            RefExpr::CallMany { args, pick } => {
                for a in args {
                    self.expr(a);
                }
                self.line(format!("i32.const {pick}"));
                self.line("call $many");
            }
            RefExpr::CallIndirect { a, target } => {
                self.expr(a);
                self.line(format!("i32.const {target}"));
                self.line("call_indirect $ft (type $pass_t)");
            }
            RefExpr::Recurse { a, depth } => {
                self.expr(a);
                self.line(format!("i32.const {depth}"));
                self.line("call $rec");
            }
            RefExpr::Take { slot, site } => {
                self.line(format!("i32.const {slot}"));
                self.line(format!("i32.const {site}"));
                self.line("call $take");
            }
            RefExpr::Echo { a, site } => {
                self.expr(a);
                self.line(format!("i32.const {site}"));
                self.line("call $echo");
            }
        }
    }

    fn stmts(&mut self, s: &[Stmt]) {
        for s in s {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        self.line(format!(";; node {}", s.id));
        match &s.kind {
            StmtKind::Check { e, site } => {
                self.expr(e);
                self.line(format!("i32.const {site}"));
                self.line("call $check");
            }
            StmtKind::TableSet { table, index, e } => {
                self.line(format!("i32.const {index}"));
                self.expr(e);
                self.line(format!("table.set $t{table}"));
            }
            StmtKind::TableFill { table, dst, e, len } => {
                self.line(format!("i32.const {dst}"));
                self.expr(e);
                self.line(format!("i32.const {len}"));
                self.line(format!("table.fill $t{table}"));
            }
            StmtKind::TableGrow {
                table,
                e,
                delta,
                site,
            } => {
                self.expr(e);
                self.line(format!("i32.const {delta}"));
                self.line(format!("table.grow $t{table}"));
                self.line(format!("i32.const {site}"));
                self.line("call $check_i32");
            }
            StmtKind::TableSize { table, site } => {
                self.line(format!("table.size $t{table}"));
                self.line(format!("i32.const {site}"));
                self.line("call $check_i32");
            }
            StmtKind::TableCopy {
                dst_table,
                src_table,
                dst,
                src,
                len,
            } => {
                self.line(format!("i32.const {dst}"));
                self.line(format!("i32.const {src}"));
                self.line(format!("i32.const {len}"));
                self.line(format!("table.copy $t{dst_table} $t{src_table}"));
            }
            StmtKind::TableInit {
                table,
                seg,
                dst,
                src,
                len,
            } => {
                self.line(format!("i32.const {dst}"));
                self.line(format!("i32.const {src}"));
                self.line(format!("i32.const {len}"));
                self.line(format!("table.init $t{table} $s{seg}"));
            }
            StmtKind::ElemDrop { seg } => self.line(format!("elem.drop $s{seg}")),
            StmtKind::GlobalSet { global, e } => {
                self.expr(e);
                self.line(format!("global.set $g{global}"));
            }
            StmtKind::LocalSet { local, e } => {
                self.expr(e);
                self.line(format!("local.set {local}"));
            }
            StmtKind::Keep { slot, e, site } => {
                self.expr(e);
                self.line(format!("i32.const {slot}"));
                self.line(format!("i32.const {site}"));
                self.line("call $keep");
            }
            StmtKind::Gc { site } => {
                self.line(format!("i32.const {site}"));
                self.line("call $gc");
            }
            StmtKind::Churn { n } => {
                self.line(format!("i32.const {n}"));
                self.line("call $churn");
            }
            StmtKind::Loop { iters, body } => {
                let c = self.counter();
                self.line("i32.const 0");
                self.line(format!("local.set {c}"));
                self.line("loop");
                self.stmts(body);
                self.line(format!("local.get {c}"));
                self.line("i32.const 1");
                self.line("i32.add");
                self.line(format!("local.tee {c}"));
                self.line(format!("i32.const {iters}"));
                self.line("i32.lt_u");
                self.line("br_if 0");
                self.line("end");
            }
            StmtKind::If { cond, then, els } => {
                self.cond(*cond);
                self.line("if");
                self.stmts(then);
                self.line("else");
                self.stmts(els);
                self.line("end");
            }
            StmtKind::Block {
                first,
                cond,
                second,
            } => {
                self.line("block");
                self.stmts(first);
                self.cond(*cond);
                self.line("br_if 0");
                self.stmts(second);
                self.line("end");
            }
            StmtKind::Drop(e) => {
                self.expr(e);
                self.line("drop");
            }
        }
    }
}

/// The main module (see the module docs of [`super`]).
pub fn main(p: &Program) -> String {
    let mut s = String::from("(module\n");
    s.push_str("  (type $pass_t (func (param externref) (result externref)))\n");
    for line in [
        "(import \"host\" \"make\" (func $make (param i32) (result externref)))",
        "(import \"host\" \"check\" (func $check (param externref i32)))",
        "(import \"host\" \"check_i32\" (func $check_i32 (param i32 i32)))",
        "(import \"host\" \"gc\" (func $gc (param i32)))",
        "(import \"host\" \"keep\" (func $keep (param externref i32 i32)))",
        "(import \"host\" \"take\" (func $take (param i32 i32) (result externref)))",
        "(import \"host\" \"echo\" (func $echo (param externref i32) (result externref)))",
        "(import \"host\" \"gseg\" (global $gseg externref))",
    ] {
        writeln!(s, "  {line}").unwrap();
    }
    for (i, t) in p.tables.iter().enumerate() {
        match t {
            TableId::Prov(j) => writeln!(
                s,
                "  (import \"prov\" \"t{j}\" (table $t{i} {} externref))",
                limits(&p.prov_tables[*j])
            )
            .unwrap(),
            TableId::Host(j) => writeln!(
                s,
                "  (import \"host\" \"ht{j}\" (table $t{i} {} externref))",
                limits(&p.host_tables[*j].0)
            )
            .unwrap(),
            TableId::Main(_) => {}
        }
    }
    for (i, g) in p.globals.iter().enumerate() {
        if let GlobalId::Prov(j) = g {
            writeln!(
                s,
                "  (import \"prov\" \"g{j}\" (global $g{i} (mut externref)))"
            )
            .unwrap();
        }
    }
    for (i, t) in p.tables.iter().enumerate() {
        if let TableId::Main(j) = t {
            writeln!(
                s,
                "  (table $t{i} {} externref)",
                limits(&p.main_tables[*j])
            )
            .unwrap();
        }
    }
    s.push_str("  (table $ft funcref (elem $pass $pass_churn))\n");
    for (i, g) in p.globals.iter().enumerate() {
        if let GlobalId::Main(j) = g {
            writeln!(
                s,
                "  (global $g{i} (mut externref) {})",
                item(&p.main_globals[*j])
            )
            .unwrap();
        }
    }
    s.push_str("  (global $churn_g (mut externref) (global.get $gseg))\n");
    for (i, seg) in p.segments.iter().enumerate() {
        let items: Vec<&str> = seg.iter().map(item).collect();
        writeln!(s, "  (elem $s{i} externref {})", items.join(" ")).unwrap();
    }
    for a in &p.active {
        // The table index of main table `a.table`.
        let ti = p
            .tables
            .iter()
            .position(|t| *t == TableId::Main(a.table))
            .expect("every main table has an index");
        let items: Vec<&str> = a.items.iter().map(item).collect();
        writeln!(
            s,
            "  (elem (table $t{ti}) (i32.const {}) externref {})",
            a.offset,
            items.join(" ")
        )
        .unwrap();
    }

    // Helpers.
    writeln!(
        s,
        "  (func $pass (type $pass_t) (call $gc (i32.const {SITE_PASS_GC})) (local.get 0))"
    )
    .unwrap();
    s.push_str("  (func $pass_churn (type $pass_t) (call $churn (i32.const 700)) (local.get 0))\n");
    s.push_str(
        "  (func $churn (param $n i32)\n    (loop $l (drop (global.get $churn_g))\n      \
         (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))\n",
    );
    let params = ["externref"; MANY].join(" ");
    writeln!(
        s,
        "  (func $many (param {params}) (param $k i32) (result externref)"
    )
    .unwrap();
    writeln!(s, "    (call $gc (i32.const {SITE_MANY_GC}))").unwrap();
    for i in 0..MANY {
        writeln!(
            s,
            "    (call $check (local.get {i}) (i32.const {}))",
            SITE_MANY_CHECK + i as u32
        )
        .unwrap();
    }
    // result = args[k]: a chain of typed selects.
    writeln!(s, "    local.get {}", MANY - 1).unwrap();
    for i in (0..MANY - 1).rev() {
        writeln!(
            s,
            "    local.get {i}\n    local.get $k\n    i32.const {i}\n    i32.ne\n    \
             select (result externref)"
        )
        .unwrap();
    }
    s.push_str("  )\n");
    writeln!(
        s,
        "  (func $rec (param $r externref) (param $d i32) (result externref) (local $m externref) (local $x externref)\n    \
         (if (i32.eqz (local.get $d)) (then (call $gc (i32.const {SITE_REC_GC})) (return (local.get $r))))\n    \
         (local.set $m (call $make (i32.const {SITE_REC_MAKE})))\n    \
         (local.set $x (call $rec (local.get $r) (i32.sub (local.get $d) (i32.const 1))))\n    \
         (call $check (local.get $m) (i32.const {SITE_REC_CHECK}))\n    \
         (local.get $x))"
    )
    .unwrap();

    for (fi, f) in p.funcs.iter().enumerate() {
        let mut b = Body {
            out: String::new(),
            next_local: 3 + p.ref_locals,
            counters: 0,
        };
        b.stmts(&f.body);
        b.line(";; result");
        b.expr(&f.result);
        let mut locals = String::new();
        for (ty, n) in [("externref", p.ref_locals), ("i32", b.counters)] {
            if n > 0 {
                write!(locals, " (local{})", format!(" {ty}").repeat(n as usize)).unwrap();
            }
        }
        writeln!(
            s,
            "  (func (export \"f{fi}\") (param $p i32) (param externref externref) (result externref){locals}\n{}  )",
            b.out
        )
        .unwrap();
    }
    for i in 0..p.tables.len() {
        writeln!(s, "  (export \"tab{i}\" (table $t{i}))").unwrap();
    }
    for i in 0..p.globals.len() {
        writeln!(s, "  (export \"glob{i}\" (global $g{i}))").unwrap();
    }
    s.push(')');
    s
}
