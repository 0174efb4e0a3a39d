//! The function index space (imports first, with the trap sites and
//! safepoints inside each function's code) and the trampolines.

use super::count;
use super::schema::{FunctionReport, StackMapReport, TrampolineReport, TrapReport};
use wasmc_format::builtins::Builtin;
use wasmc_format::sections::func_symbol;
use wasmc_format::{ExternKind, FuncInfo, ModuleInfo};

/// One entry per function; `traps` and `stack_maps` (already located) give
/// the per-function counts.
pub(super) fn functions(
    info: &ModuleInfo,
    funcs: &[FuncInfo],
    traps: &[TrapReport],
    stack_maps: &[StackMapReport],
) -> Vec<FunctionReport> {
    let per_function = |located: &mut dyn Iterator<Item = Option<u32>>| {
        let mut counts = vec![0u32; funcs.len()];
        for f in located.flatten() {
            if let Some(c) = counts.get_mut(f as usize) {
                *c += 1;
            }
        }
        counts
    };
    let trap_counts = per_function(&mut traps.iter().map(|t| t.location.function));
    let safepoint_counts = per_function(&mut stack_maps.iter().map(|s| s.location.function));
    let mut export_names: Vec<Vec<String>> = vec![Vec::new(); funcs.len()];
    for e in &info.exports {
        if e.kind == ExternKind::Func {
            if let Some(v) = export_names.get_mut(e.index as usize) {
                v.push(e.name.clone());
            }
        }
    }
    let mut functions = Vec::with_capacity(funcs.len());
    for (i, f) in funcs.iter().enumerate() {
        let index = count(i);
        let code = f.code.as_ref();
        functions.push(FunctionReport {
            index,
            name: f.name.clone(),
            imported: code.is_none(),
            symbol: code.map(|_| func_symbol(index, f.name.as_deref())),
            code_offset: code.map(|c| c.range.offset),
            code_size: code.map(|c| c.range.len),
            wasm_offset: code.map(|c| c.wasm_offset),
            type_index: f.type_index,
            signature: info
                .types
                .get(f.type_index as usize)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            exports: export_names
                .get_mut(i)
                .map(std::mem::take)
                .unwrap_or_default(),
            traps: trap_counts.get(i).copied().unwrap_or(0),
            safepoints: safepoint_counts.get(i).copied().unwrap_or(0),
        });
    }
    functions
}

/// The builtin trampolines, then entry and host trampolines per type; and
/// their code size, counting code shared between types once.
pub(super) fn trampolines(info: &ModuleInfo) -> (Vec<TrampolineReport>, u64) {
    let mut trampolines = Vec::new();
    for ((i, b), r) in Builtin::ALL
        .iter()
        .enumerate()
        .zip(&info.builtin_trampolines)
        .filter_map(|(b, r)| Some((b, r.as_ref()?)))
    {
        trampolines.push(TrampolineReport {
            kind: "builtin".into(),
            name: b.name().into(),
            index: count(i),
            label: format!("<builtin {}>", b.name()),
            code_offset: r.offset,
            code_size: r.len,
        });
    }
    for (kind, pick) in [("entry", true), ("host", false)] {
        for (t, tr) in info.trampolines.iter().enumerate() {
            let r = if pick { tr.entry } else { tr.host };
            trampolines.push(TrampolineReport {
                kind: kind.into(),
                name: info
                    .types
                    .get(t)
                    .map(|ty| ty.to_string())
                    .unwrap_or_default(),
                index: count(t),
                label: format!("<{kind} trampoline type {t}>"),
                code_offset: r.offset,
                code_size: r.len,
            });
        }
    }
    // Types with the same signature share trampolines: count bytes once.
    let mut ranges: Vec<(u32, u32)> = trampolines
        .iter()
        .map(|t| (t.code_offset, t.code_size))
        .collect();
    ranges.sort_unstable();
    ranges.dedup();
    let code_bytes = ranges.iter().map(|r| u64::from(r.1)).sum();
    (trampolines, code_bytes)
}
