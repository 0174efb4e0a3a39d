//! Stack maps for `externref`s: which SSA values hold a reference across each
//! call, the stack slots they are kept in, and the stores that keep those
//! slots current. The collector reads exactly these slots (through the
//! `.wasmc.stackmaps` table built from them) as the roots of Wasm frames.
//!
//! Why wasmc does this itself instead of declaring values to
//! cranelift-frontend: the safepoint spiller of cranelift-frontend 0.112 (the
//! pinned version) loses live references in two ways, each a use after free
//! for a deferred-reference-counting collector:
//!
//! 1. it only knows the values declared to it, and SSA construction creates
//!    block parameters for a reference variable (a local live around a loop)
//!    that nobody declares (issue 10, bug 2);
//! 2. it hands a stack slot back to its free list at the definition of a
//!    value while walking blocks backwards, and can give that slot to a
//!    loop-invariant reference that is still live around the loop's back
//!    edge: the next iteration's store overwrites the invariant's slot and
//!    the collector no longer sees it (found by the GC model fuzzer, seed
//!    1102598; upstream fixed the same bug much later, wasmtime issue 13461).
//!
//! So the environment declares nothing to the frontend (its spiller never
//! runs) and [`insert`] runs on the finished function instead:
//!
//! - **Which values**: every externref the translation produced (call
//!   results, `table.get`, `global.get`, typed `select`, parameters) and,
//!   closed over branch arguments, every block parameter they flow into.
//! - **Liveness**: a backward data-flow fixed point over the reachable
//!   blocks. Branch arguments count as uses (a value passed to a block
//!   parameter is live up to the branch).
//! - **Stack map of a call**: the references live after the call, minus its
//!   own results. Arguments that die at the call are the callee's to keep.
//! - **Slots**: a value live across any call gets a slot, stored once right
//!   after its definition (block parameters: at the top of their block). Two
//!   values share a slot only if neither is live where the other is defined,
//!   the SSA interference relation; so on every path from a value's
//!   definition to a call it is live across, no other value is stored into
//!   its slot, and the slot holds it at that call. This is the property bug 2
//!   of the frontend broke, and the one the tests below check.
//!
//! The collector never moves objects, so uses are not rewritten to reload
//! from the slot: the slot only has to keep the reference visible.

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::ir::{self, InstBuilder};
use std::collections::{HashMap, HashSet};

/// A set of reference values, as bits over their dense indices.
#[derive(Clone, Default, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn with_len(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    /// `self |= other`; whether `self` grew.
    fn union_with(&mut self, other: &Bits) -> bool {
        let mut grew = false;
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            let n = *a | *b;
            grew |= n != *a;
            *a = n;
        }
        grew
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64)
                .filter(move |b| bits & (1u64 << b) != 0)
                .map(move |b| w * 64 + b)
        })
    }
}

/// Every reference value of `func`: `seeds` (every externref value the
/// translation produced other than block parameters, and the function's
/// externref parameters) closed over branch arguments. A block parameter
/// holds a reference exactly when one of its incoming arguments does (Wasm
/// validation gives every argument of a parameter the same type), so the
/// closure never reaches an integer. Aliases are resolved.
fn reference_values(func: &ir::Function, seeds: &[ir::Value]) -> Vec<ir::Value> {
    let mut flows: HashMap<ir::Value, Vec<ir::Value>> = HashMap::new();
    for block in func.layout.blocks() {
        for inst in func.layout.block_insts(block) {
            for call in func.dfg.insts[inst].branch_destination(&func.dfg.jump_tables) {
                let target = call.block(&func.dfg.value_lists);
                let args = call.args_slice(&func.dfg.value_lists);
                for (arg, param) in args.iter().zip(func.dfg.block_params(target)) {
                    flows
                        .entry(func.dfg.resolve_aliases(*arg))
                        .or_default()
                        .push(*param);
                }
            }
        }
    }
    let mut found: HashSet<ir::Value> = HashSet::new();
    let mut out = Vec::new();
    let mut work: Vec<ir::Value> = seeds.iter().map(|v| func.dfg.resolve_aliases(*v)).collect();
    while let Some(v) = work.pop() {
        if found.insert(v) {
            out.push(v);
            if let Some(params) = flows.get(&v) {
                work.extend(params.iter().copied());
            }
        }
    }
    // Deterministic slot numbering, whatever the hash order.
    out.sort();
    out
}

/// Reachable blocks in post-order (successors before predecessors, apart
/// from back edges), so the liveness fixed point needs one pass on acyclic
/// code. Unreachable blocks never run and need no stack maps.
fn post_order(func: &ir::Function) -> Vec<ir::Block> {
    let Some(entry) = func.layout.entry_block() else {
        return Vec::new();
    };
    let mut seen = HashSet::from([entry]);
    let mut order = Vec::new();
    // (block, successors already pushed)
    let mut stack = vec![(entry, false)];
    while let Some((block, expanded)) = stack.pop() {
        if expanded {
            order.push(block);
            continue;
        }
        stack.push((block, true));
        for succ in func.block_successors(block) {
            if seen.insert(succ) {
                stack.push((succ, false));
            }
        }
    }
    order
}

/// Liveness and interference of the reference values of one function.
struct Analysis<'a> {
    func: &'a ir::Function,
    /// Dense index of each reference value.
    index: HashMap<ir::Value, usize>,
    order: Vec<ir::Block>,
    live_in: HashMap<ir::Block, Bits>,
    n: usize,
}

impl<'a> Analysis<'a> {
    fn new(func: &'a ir::Function, refs: &[ir::Value]) -> Self {
        let index = refs.iter().enumerate().map(|(i, v)| (*v, i)).collect();
        let order = post_order(func);
        let n = refs.len();
        let live_in = order.iter().map(|b| (*b, Bits::with_len(n))).collect();
        let mut a = Analysis {
            func,
            index,
            order,
            live_in,
            n,
        };
        a.solve();
        a
    }

    fn idx(&self, v: ir::Value) -> Option<usize> {
        self.index.get(&self.func.dfg.resolve_aliases(v)).copied()
    }

    fn live_out(&self, block: ir::Block) -> Bits {
        let mut out = Bits::with_len(self.n);
        for succ in self.func.block_successors(block) {
            if let Some(l) = self.live_in.get(&succ) {
                out.union_with(l);
            }
        }
        out
    }

    /// Walks `block` backwards from its live-out set, calling `at_inst(inst,
    /// live after inst)` before the instruction's results are removed and
    /// its uses added, and `at_top(live before the first instruction)`
    /// before the block parameters are removed. Returns the live-in set.
    fn walk(
        &self,
        block: ir::Block,
        mut at_inst: impl FnMut(ir::Inst, &Bits),
        mut at_top: impl FnMut(&Bits),
    ) -> Bits {
        let func = self.func;
        let mut live = self.live_out(block);
        let mut cur = func.layout.last_inst(block);
        while let Some(inst) = cur {
            at_inst(inst, &live);
            for r in func.dfg.inst_results(inst) {
                if let Some(i) = self.idx(*r) {
                    live.remove(i);
                }
            }
            for v in func.dfg.inst_values(inst) {
                if let Some(i) = self.idx(v) {
                    live.insert(i);
                }
            }
            cur = func.layout.prev_inst(inst);
        }
        at_top(&live);
        for p in func.dfg.block_params(block) {
            if let Some(i) = self.idx(*p) {
                live.remove(i);
            }
        }
        live
    }

    /// The live-in fixed point: `live_in(b) = uses(b) ∪ (⋃ live_in(succ) −
    /// defs(b))`, a worklist over predecessors.
    fn solve(&mut self) {
        let mut preds: HashMap<ir::Block, Vec<ir::Block>> = HashMap::new();
        for b in &self.order {
            for s in self.func.block_successors(*b) {
                preds.entry(s).or_default().push(*b);
            }
        }
        // Popped from the back: post-order first.
        let mut work: Vec<ir::Block> = self.order.iter().rev().copied().collect();
        let mut queued: HashSet<ir::Block> = work.iter().copied().collect();
        while let Some(b) = work.pop() {
            queued.remove(&b);
            let new = self.walk(b, |_, _| {}, |_| {});
            let grew = self
                .live_in
                .get_mut(&b)
                .expect("every ordered block has a set")
                .union_with(&new);
            if grew {
                for p in preds.get(&b).into_iter().flatten() {
                    if queued.insert(*p) {
                        work.push(*p);
                    }
                }
            }
        }
    }
}

/// Gives every externref of `func` live across a call a stack slot, stores it
/// there after its definition, and records the slots live at each call as
/// that call's user stack map. `seeds` as in [`reference_values`].
///
/// Runs on a finished function (after `FunctionBuilder::finalize`), before
/// any other pass; with no references it changes nothing.
pub fn insert(func: &mut ir::Function, seeds: &[ir::Value]) {
    if seeds.is_empty() {
        return;
    }
    let refs = reference_values(func, seeds);
    let n = refs.len();

    let (calls, spilled, conflicts) = {
        let analysis = Analysis::new(func, &refs);
        let calls = live_across_calls(&analysis);
        let mut spilled = Bits::with_len(n);
        for (_, live) in &calls {
            for i in live {
                spilled.insert(*i);
            }
        }
        let conflicts = interference(&analysis, &spilled);
        (calls, spilled, conflicts)
    };
    if calls.is_empty() {
        return;
    }

    // Greedy colouring in value order: the lowest slot no neighbour holds.
    let mut slot_of: Vec<Option<usize>> = vec![None; n];
    let mut slots: Vec<ir::StackSlot> = Vec::new();
    for v in spilled.iter() {
        let taken: HashSet<usize> = conflicts[v].iter().filter_map(|u| slot_of[*u]).collect();
        let s = (0..).find(|s| !taken.contains(s)).expect("a free slot");
        slot_of[v] = Some(s);
        if s == slots.len() {
            let bytes = func.dfg.value_type(refs[v]).bytes();
            slots.push(func.create_sized_stack_slot(ir::StackSlotData::new(
                ir::StackSlotKind::ExplicitSlot,
                bytes,
                bytes.ilog2() as u8,
            )));
        }
    }
    let slot = |i: usize| slots[slot_of[i].expect("spilled values have slots")];

    // Rewrite: a store after each spilled definition, a map at each call.
    for i in spilled.iter() {
        let v = refs[i];
        let mut pos = FuncCursor::new(func);
        match pos.func.dfg.value_def(v) {
            ir::ValueDef::Result(inst, _) => pos.goto_after_inst(inst),
            ir::ValueDef::Param(block, _) => pos.goto_first_inst(block),
            other => unreachable!("an alias-resolved value is defined, not {other:?}"),
        }
        pos.ins().stack_store(v, slot(i), 0);
    }
    for (inst, live) in &calls {
        for &i in live {
            let ty = func.dfg.value_type(refs[i]);
            func.dfg.append_user_stack_map_entry(
                *inst,
                ir::UserStackMapEntry {
                    ty,
                    slot: slot(i),
                    offset: 0,
                },
            );
        }
    }
    #[cfg(debug_assertions)]
    verify(
        func,
        &calls
            .iter()
            .map(|(inst, live)| (*inst, live.iter().map(|i| refs[*i]).collect()))
            .collect::<Vec<_>>(),
    );
}

/// Each call with the reference values live across it (live after it, not
/// its own results), in block order.
fn live_across_calls(analysis: &Analysis) -> Vec<(ir::Inst, Vec<usize>)> {
    let dfg = &analysis.func.dfg;
    let mut calls = Vec::new();
    for &block in &analysis.order {
        analysis.walk(
            block,
            |inst, live_after| {
                if !dfg.insts[inst].opcode().is_safepoint() {
                    return;
                }
                let results: Vec<usize> = dfg
                    .inst_results(inst)
                    .iter()
                    .filter_map(|r| analysis.idx(*r))
                    .collect();
                let live: Vec<usize> = live_after.iter().filter(|i| !results.contains(i)).collect();
                if !live.is_empty() {
                    calls.push((inst, live));
                }
            },
            |_| {},
        );
    }
    calls
}

/// The SSA interference graph restricted to `spilled` values: two values
/// interfere when one is live where the other is defined (values defined
/// together, the results of one instruction or the parameters of one block,
/// interfere with each other).
fn interference(analysis: &Analysis, spilled: &Bits) -> Vec<HashSet<usize>> {
    let dfg = &analysis.func.dfg;
    let mut conflicts: Vec<HashSet<usize>> = vec![HashSet::new(); analysis.n];
    let mut add = |defs: &[usize], live: &Bits| {
        for &d in defs.iter().filter(|d| spilled.contains(**d)) {
            let others = live.iter().chain(defs.iter().copied());
            for o in others.filter(|o| *o != d && spilled.contains(*o)) {
                conflicts[d].insert(o);
                conflicts[o].insert(d);
            }
        }
    };
    for &block in &analysis.order {
        let mut at_defs: Vec<(Vec<usize>, Bits)> = Vec::new();
        let mut top = Bits::default();
        analysis.walk(
            block,
            |inst, live_after| {
                let defs: Vec<usize> = dfg
                    .inst_results(inst)
                    .iter()
                    .filter_map(|r| analysis.idx(*r))
                    .collect();
                if !defs.is_empty() {
                    at_defs.push((defs, live_after.clone()));
                }
            },
            |live_top| top = live_top.clone(),
        );
        for (defs, live) in &at_defs {
            add(defs, live);
        }
        let params: Vec<usize> = dfg
            .block_params(block)
            .iter()
            .filter_map(|p| analysis.idx(*p))
            .collect();
        add(&params, &top);
    }
    conflicts
}

/// Checks, independently of the colouring, that at every call each slot in
/// its stack map holds the value the liveness analysis says is live there:
/// a forward data flow of what each slot holds (the last `stack_store` into
/// it on every path; unknown where paths disagree). Run on every function
/// in debug builds, so the spec suite and the fuzzers exercise it.
#[cfg_attr(not(debug_assertions), allow(dead_code))]
fn verify(func: &ir::Function, calls: &[(ir::Inst, Vec<ir::Value>)]) {
    type Holds = HashMap<ir::StackSlot, Option<ir::Value>>;
    let expect: HashMap<ir::Inst, &Vec<ir::Value>> = calls.iter().map(|(i, v)| (*i, v)).collect();
    let rpo: Vec<ir::Block> = post_order(func).into_iter().rev().collect();
    let mut entry_state: HashMap<ir::Block, Holds> = HashMap::new();
    if let Some(b) = rpo.first() {
        entry_state.insert(*b, Holds::new());
    }
    let transfer = |block: ir::Block, mut holds: Holds, check: bool| -> Holds {
        for inst in func.layout.block_insts(block) {
            if let ir::InstructionData::StackStore {
                arg, stack_slot, ..
            } = func.dfg.insts[inst]
            {
                holds.insert(stack_slot, Some(func.dfg.resolve_aliases(arg)));
            }
            if !check {
                continue;
            }
            let Some(live) = expect.get(&inst) else {
                continue;
            };
            let entries = func.dfg.user_stack_map_entries(inst).unwrap_or(&[]);
            for v in live.iter() {
                let held = entries
                    .iter()
                    .any(|e| holds.get(&e.slot).copied().flatten() == Some(*v));
                assert!(
                    held,
                    "stack map of {} misses live reference {v}:\n{}",
                    func.dfg.display_inst(inst),
                    func.display()
                );
            }
        }
        holds
    };
    let mut changed = true;
    while changed {
        changed = false;
        for &block in &rpo {
            let Some(state) = entry_state.get(&block).cloned() else {
                continue;
            };
            let out = transfer(block, state, false);
            for succ in func.block_successors(block) {
                let merged = match entry_state.get(&succ) {
                    None => out.clone(),
                    Some(old) => old
                        .iter()
                        .map(|(s, v)| (*s, if out.get(s) == Some(v) { *v } else { None }))
                        .collect(),
                };
                if entry_state.get(&succ) != Some(&merged) {
                    entry_state.insert(succ, merged);
                    changed = true;
                }
            }
        }
    }
    for &block in &rpo {
        if let Some(state) = entry_state.get(&block).cloned() {
            transfer(block, state, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::types::{I32, I64};
    use cranelift_codegen::ir::{AbiParam, ExtFuncData, ExternalName, Signature, UserExternalName};
    use cranelift_codegen::isa::CallConv;
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    /// The shape of the fuzzer's seed 1102598, cut down: a reference `x`
    /// made before a loop and used in every iteration, and a reference `y`
    /// made and dropped inside it, with collections (calls) in between.
    ///
    /// ```text
    /// block0(c):  x = make(); jump block1
    /// block1:     y = make(); gc(); use(y); use(x); brif c, block1, block2
    /// block2:     return
    /// ```
    struct Loop {
        func: ir::Function,
        x: ir::Value,
        y: ir::Value,
        gc: ir::Inst,
        use_y: ir::Inst,
        use_x: ir::Inst,
    }

    fn loop_with_invariant() -> Loop {
        let mut func = ir::Function::new();
        func.signature.params.push(AbiParam::new(I32));
        let mut ctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut ctx);
        let import =
            |b: &mut FunctionBuilder, index: u32, params: &[ir::Type], rets: &[ir::Type]| {
                let mut sig = Signature::new(CallConv::SystemV);
                sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
                sig.returns.extend(rets.iter().map(|t| AbiParam::new(*t)));
                let signature = b.import_signature(sig);
                let name = b
                    .func
                    .declare_imported_user_function(UserExternalName::new(0, index));
                b.import_function(ExtFuncData {
                    name: ExternalName::user(name),
                    signature,
                    colocated: true,
                })
            };
        let make = import(&mut b, 0, &[], &[I64]);
        let gc = import(&mut b, 1, &[], &[]);
        let use_ = import(&mut b, 2, &[I64], &[]);
        let (b0, b1, b2) = (b.create_block(), b.create_block(), b.create_block());
        b.append_block_params_for_function_params(b0);
        b.switch_to_block(b0);
        let c = b.block_params(b0)[0];
        let call = b.ins().call(make, &[]);
        let x = b.inst_results(call)[0];
        b.ins().jump(b1, &[]);
        b.switch_to_block(b1);
        let call = b.ins().call(make, &[]);
        let y = b.inst_results(call)[0];
        let gc = b.ins().call(gc, &[]);
        let use_y = b.ins().call(use_, &[y]);
        let use_x = b.ins().call(use_, &[x]);
        b.ins().brif(c, b1, &[], b2, &[]);
        b.switch_to_block(b2);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize();
        Loop {
            func,
            x,
            y,
            gc,
            use_y,
            use_x,
        }
    }

    /// The one `stack_store` of `v`.
    fn store_of(func: &ir::Function, v: ir::Value) -> ir::Inst {
        let stores: Vec<ir::Inst> = func
            .layout
            .blocks()
            .flat_map(|b| func.layout.block_insts(b))
            .filter(|i| {
                matches!(func.dfg.insts[*i], ir::InstructionData::StackStore { arg, .. } if arg == v)
            })
            .collect();
        assert_eq!(stores.len(), 1, "{v} is stored exactly once");
        stores[0]
    }

    fn stored_slot(func: &ir::Function, v: ir::Value) -> ir::StackSlot {
        match func.dfg.insts[store_of(func, v)] {
            ir::InstructionData::StackStore { stack_slot, .. } => stack_slot,
            _ => unreachable!("store_of returns a stack_store"),
        }
    }

    fn map(func: &ir::Function, inst: ir::Inst) -> Vec<ir::StackSlot> {
        let mut s: Vec<_> = func
            .dfg
            .user_stack_map_entries(inst)
            .unwrap_or(&[])
            .iter()
            .map(|e| e.slot)
            .collect();
        s.sort();
        s
    }

    #[test]
    fn a_loop_invariant_reference_keeps_its_own_slot() {
        let Loop {
            mut func,
            x,
            y,
            gc,
            use_y,
            use_x,
        } = loop_with_invariant();
        insert(&mut func, &[x, y]);
        let (sx, sy) = (stored_slot(&func, x), stored_slot(&func, y));
        assert_ne!(
            sx,
            sy,
            "x is live around the loop while y is defined:\n{}",
            func.display()
        );
        let mut both = vec![sx, sy];
        both.sort();
        assert_eq!(map(&func, gc), both);
        assert_eq!(map(&func, use_y), vec![sx], "y dies at its last use");
        assert_eq!(
            map(&func, use_x),
            vec![sx],
            "x stays live around the back edge"
        );
    }

    #[test]
    fn values_that_never_overlap_share_a_slot() {
        // y is defined after x's last use in a straight line: one slot.
        let mut func = ir::Function::new();
        let mut ctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut ctx);
        let mut sig = Signature::new(CallConv::SystemV);
        sig.returns.push(AbiParam::new(I64));
        let sig_make = b.import_signature(sig);
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(I64));
        let sig_use = b.import_signature(sig);
        let n0 = b
            .func
            .declare_imported_user_function(UserExternalName::new(0, 0));
        let n1 = b
            .func
            .declare_imported_user_function(UserExternalName::new(0, 1));
        let make = b.import_function(ExtFuncData {
            name: ExternalName::user(n0),
            signature: sig_make,
            colocated: true,
        });
        let use_ = b.import_function(ExtFuncData {
            name: ExternalName::user(n1),
            signature: sig_use,
            colocated: true,
        });
        let b0 = b.create_block();
        b.switch_to_block(b0);
        let i = b.ins().call(make, &[]);
        let x = b.inst_results(i)[0];
        b.ins().call(make, &[]); // x live across
        b.ins().call(use_, &[x]);
        let i = b.ins().call(make, &[]);
        let y = b.inst_results(i)[0];
        b.ins().call(make, &[]); // y live across
        b.ins().call(use_, &[y]);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize();
        insert(&mut func, &[x, y]);
        assert_eq!(stored_slot(&func, x), stored_slot(&func, y));
        assert_eq!(func.sized_stack_slots.len(), 1);
    }

    #[test]
    fn a_function_without_references_is_unchanged() {
        let Loop { mut func, .. } = loop_with_invariant();
        let before = func.display().to_string();
        insert(&mut func, &[]);
        assert_eq!(func.display().to_string(), before);
    }

    /// The checker that runs on every function in debug builds catches the
    /// frontend's bug: make `y` share `x`'s slot and it must object.
    #[test]
    #[should_panic(expected = "misses live reference")]
    fn the_checker_rejects_a_slot_shared_around_a_loop() {
        let Loop {
            mut func,
            x,
            y,
            gc,
            use_y,
            use_x,
        } = loop_with_invariant();
        insert(&mut func, &[x, y]);
        let sx = stored_slot(&func, x);
        let store_y = store_of(&func, y);
        if let ir::InstructionData::StackStore { stack_slot, .. } = &mut func.dfg.insts[store_y] {
            *stack_slot = sx;
        }
        verify(
            &func,
            &[(gc, vec![x, y]), (use_y, vec![x]), (use_x, vec![x])],
        );
    }
}
