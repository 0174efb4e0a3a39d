//! Where a `.text` offset is: the function or trampoline that contains it,
//! for labelling trap sites, safepoints and disassembly.

use super::super::InspectError;
use super::schema::Location;
use wasmc_format::builtins::Builtin;
use wasmc_format::sections::func_symbol;
use wasmc_format::{FormatError, FuncInfo, ModuleInfo};
use wasmc_loader::artifact::ParsedArtifact;
use wasmc_loader::LoadError;

/// A named range of `.text`: a function or a trampoline.
#[derive(Clone, Debug)]
pub(crate) struct Region {
    /// Location region kind (see [`Location::region`]).
    pub kind: &'static str,
    /// Function index for functions.
    pub function: Option<u32>,
    /// Label without offset.
    pub label: String,
    /// Start in `.text`.
    pub start: u32,
    /// Length.
    pub len: u32,
}

/// Maps `.text` offsets to functions and trampolines.
#[derive(Clone, Debug)]
pub(crate) struct CodeMap {
    /// Defined functions, in code order (checked by [`decode_funcs`]).
    functions: Vec<Region>,
    /// Trampolines.
    trampolines: Vec<Region>,
}

/// Reads the whole function index space (`.wasmc.funcs` and `.wasmc.names`),
/// checking every record and the code order.
pub(crate) fn decode_funcs(a: &ParsedArtifact<'_>) -> Result<Vec<FuncInfo>, InspectError> {
    let table = a.funcs()?;
    let names = a.names()?;
    let err = |e: FormatError| InspectError::from(LoadError::from(e));
    table.validate().map_err(err)?;
    (0..table.len())
        .map(|i| {
            let r = table.get(i).map_err(err)?;
            Ok(FuncInfo {
                type_index: r.type_index,
                name: names.get(i).map_err(err)?.map(str::to_string),
                code: r.code,
            })
        })
        .collect()
}

impl CodeMap {
    pub(crate) fn new(info: &ModuleInfo, funcs: &[FuncInfo]) -> CodeMap {
        let functions = funcs
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let code = f.code.as_ref()?;
                Some(Region {
                    kind: "function",
                    function: Some(i as u32),
                    label: func_symbol(i as u32, f.name.as_deref()),
                    start: code.range.offset,
                    len: code.range.len,
                })
            })
            .collect();
        let mut trampolines = Vec::new();
        for (b, r) in Builtin::ALL
            .iter()
            .zip(&info.builtin_trampolines)
            .filter_map(|(b, r)| Some((b, r.as_ref()?)))
        {
            trampolines.push(Region {
                kind: "builtin_trampoline",
                function: None,
                label: format!("<builtin {}>", b.name()),
                start: r.offset,
                len: r.len,
            });
        }
        for (t, tr) in info.trampolines.iter().enumerate() {
            trampolines.push(Region {
                kind: "entry_trampoline",
                function: None,
                label: format!("<entry trampoline type {t}>"),
                start: tr.entry.offset,
                len: tr.entry.len,
            });
            trampolines.push(Region {
                kind: "host_trampoline",
                function: None,
                label: format!("<host trampoline type {t}>"),
                start: tr.host.offset,
                len: tr.host.len,
            });
        }
        CodeMap {
            functions,
            trampolines,
        }
    }

    /// The function or trampoline containing `.text` offset `off`.
    pub(crate) fn region_at(&self, off: u32) -> Option<Region> {
        let contains =
            |r: &Region| off >= r.start && u64::from(off) < u64::from(r.start) + u64::from(r.len);
        let i = self.functions.partition_point(|r| r.start <= off);
        if let Some(r) = i.checked_sub(1).map(|i| &self.functions[i]) {
            if contains(r) {
                return Some(r.clone());
            }
        }
        self.trampolines.iter().find(|r| contains(r)).cloned()
    }

    /// The location of `.text` offset `off`.
    pub(crate) fn locate(&self, off: u32) -> Location {
        match self.region_at(off) {
            Some(r) => {
                let rel = off - r.start;
                Location {
                    region: r.kind.to_string(),
                    function: r.function,
                    offset: rel,
                    label: format!("{}+{rel:#x}", r.label),
                }
            }
            None => Location {
                region: "unknown".to_string(),
                function: None,
                offset: off,
                label: format!("<.text>+{off:#x}"),
            },
        }
    }

    /// The location of a safepoint with return address `ret`: the call is
    /// just before it, so the region is the one containing `ret - 1`.
    pub(crate) fn locate_return(&self, ret: u32) -> Location {
        match self.region_at(ret.saturating_sub(1)) {
            Some(r) => {
                let rel = ret.saturating_sub(r.start);
                Location {
                    region: r.kind.to_string(),
                    function: r.function,
                    offset: rel,
                    label: format!("{}+{rel:#x}", r.label),
                }
            }
            None => self.locate(ret),
        }
    }
}
