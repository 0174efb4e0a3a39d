//! `wasmc inspect --disas`: disassembly of functions and trampolines with
//! the artifact's tables marked inline.
//!
//! Each instruction is decoded with capstone (as Cranelift's `disas` feature
//! does) for the artifact's architecture, not the host's. Marks:
//!
//! - `trap: KIND` on an instruction listed in `.wasmc.traps`;
//! - `safepoint: N slots [...]` on a call whose return address keys a stack
//!   map (the instruction that ends at the key);
//! - `wasm 0x..` where the address map moves to a new Wasm instruction.
//!
//! Bytes that do not decode (a corrupted `.text`) are shown as `.byte` and
//! skipped by the architecture's minimum instruction size, so disassembly of
//! untrusted code never fails half-way.

use super::report::{decode_funcs, CodeMap, Report, StackMapReport, TrapReport};
use super::text::sanitize;
use super::InspectError;
use capstone::arch::{self, BuildsCapstone, BuildsCapstoneExtraMode};
use capstone::Capstone;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use wasmc_loader::artifact::ParsedArtifact;

/// The disassembly of the selected code regions.
#[derive(Clone, Debug, Serialize)]
pub struct Disassembly {
    /// Architecture the code was decoded for.
    pub arch: String,
    /// One entry per function or trampoline, in `.text` order.
    pub regions: Vec<DisasRegion>,
}

/// One disassembled function or trampoline.
#[derive(Clone, Debug, Serialize)]
pub struct DisasRegion {
    /// Symbol or trampoline label.
    pub label: String,
    /// Function index, for functions.
    pub function: Option<u32>,
    /// Start in `.text`.
    pub code_offset: u32,
    /// Size in bytes.
    pub code_size: u32,
    /// Decoded instructions.
    pub instructions: Vec<Instruction>,
}

/// One decoded instruction.
#[derive(Clone, Debug, Serialize)]
pub struct Instruction {
    /// Offset in `.text`.
    pub offset: u32,
    /// Encoded bytes, lowercase hex.
    pub bytes: String,
    /// Mnemonic and operands; `.byte 0x..` for undecodable bytes.
    pub text: String,
    /// Trap kind when the instruction is in the trap table.
    pub trap: Option<String>,
    /// Live externref slots when the instruction is a safepoint's call.
    pub safepoint_slots: Option<Vec<u32>>,
    /// Wasm offset from the address map.
    pub wasm_offset: Option<u32>,
}

struct Decoder {
    cs: Capstone,
    /// Step over undecodable bytes.
    min_len: usize,
}

fn decoder(arch_name: &str) -> Result<Decoder, InspectError> {
    let err = |e: capstone::Error| InspectError::Disas(format!("capstone: {e}"));
    let (cs, min_len) = match arch_name {
        "x86_64" => (
            Capstone::new()
                .x86()
                .mode(arch::x86::ArchMode::Mode64)
                .build()
                .map_err(err)?,
            1,
        ),
        "aarch64" => (
            Capstone::new()
                .arm64()
                .mode(arch::arm64::ArchMode::Arm)
                .build()
                .map_err(err)?,
            4,
        ),
        "riscv64" => (
            Capstone::new()
                .riscv()
                .mode(arch::riscv::ArchMode::RiscV64)
                .extra_mode(std::iter::once(arch::riscv::ArchExtraMode::RiscVC))
                .build()
                .map_err(err)?,
            2,
        ),
        other => {
            return Err(InspectError::Disas(format!(
                "cannot disassemble code for architecture `{}`",
                sanitize(other)
            )))
        }
    };
    Ok(Decoder { cs, min_len })
}

/// Appends `<label+off>` to a direct call or branch whose operand is a
/// `.text` offset (capstone prints targets as absolute addresses, and we
/// decode at the `.text` offset, so they are `.text` offsets).
fn annotate_target(text: String, code_map: &CodeMap) -> String {
    let Some((mnemonic, operand)) = text.split_once(' ') else {
        return text;
    };
    let branch = matches!(mnemonic, "call" | "jmp" | "bl" | "b" | "jal" | "j")
        || (mnemonic.starts_with('j') && mnemonic.len() <= 4)
        || mnemonic.starts_with("b.");
    let operand = operand.trim().trim_start_matches('#');
    let target = match operand.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => operand.parse::<u32>().ok(),
    };
    match target {
        Some(t) if branch => {
            let loc = code_map.locate(t);
            if loc.region == "unknown" {
                return text;
            }
            let label = loc.label.strip_suffix("+0x0").unwrap_or(&loc.label);
            if label.starts_with('<') {
                format!("{text} {label}")
            } else {
                format!("{text} <{label}>")
            }
        }
        _ => text,
    }
}

/// A code region that `--disas` can select.
struct Candidate {
    label: String,
    function: Option<u32>,
    start: u32,
    len: u32,
    /// Names that select it.
    names: Vec<String>,
}

fn candidates(r: &Report) -> Vec<Candidate> {
    let mut out = Vec::new();
    for f in &r.functions {
        let (Some(sym), Some(start), Some(len)) = (&f.symbol, f.code_offset, f.code_size) else {
            continue;
        };
        let mut names = vec![f.index.to_string(), sym.clone()];
        names.extend(f.name.iter().cloned());
        names.extend(f.exports.iter().cloned());
        out.push(Candidate {
            label: sym.clone(),
            function: Some(f.index),
            start,
            len,
            names,
        });
    }
    for t in &r.trampolines {
        let mut names = vec![t.label.clone()];
        match t.kind.as_str() {
            "builtin" => {
                names.push(t.name.clone());
                names.push(wasmc_format::sections::builtin_trampoline_symbol(&t.name));
            }
            "entry" => names.push(wasmc_format::sections::entry_trampoline_symbol(t.index)),
            _ => names.push(wasmc_format::sections::host_trampoline_symbol(t.index)),
        }
        out.push(Candidate {
            label: t.label.clone(),
            function: None,
            start: t.code_offset,
            len: t.code_size,
            names,
        });
    }
    out
}

/// Disassembles the function or trampoline named `select` (an index, a name,
/// an export name, a symbol, or a builtin name), or every defined function
/// when `select` is `None`.
pub fn disassemble(
    a: &ParsedArtifact<'_>,
    r: &Report,
    select: Option<&str>,
) -> Result<Disassembly, InspectError> {
    let all = candidates(r);
    let chosen: Vec<&Candidate> = match select {
        None => all.iter().filter(|c| c.function.is_some()).collect(),
        Some(name) => {
            let found: Vec<&Candidate> = all
                .iter()
                .filter(|c| c.names.iter().any(|n| n == name))
                .collect();
            match found.first() {
                // Types with one signature share trampolines: keep the first.
                Some(first) => vec![*first],
                None => {
                    return Err(InspectError::NoSuchFunction(sanitize(name)));
                }
            }
        }
    };
    let dec = decoder(&r.header.arch)?;
    let traps: HashMap<u32, &TrapReport> = r.traps.iter().map(|t| (t.code_offset, t)).collect();
    let safepoints: HashMap<u32, &StackMapReport> =
        r.stack_maps.iter().map(|s| (s.return_offset, s)).collect();
    let addrmap = a.addr_map()?;
    let code_map = CodeMap::new(a.info(), &decode_funcs(a)?);
    let text = a.text();
    let mut regions = Vec::with_capacity(chosen.len());
    for c in chosen {
        let start = c.start as usize;
        let code = start
            .checked_add(c.len as usize)
            .and_then(|end| text.get(start..end))
            .ok_or_else(|| {
                InspectError::Disas(format!("{}: code range is outside `.text`", c.label))
            })?;
        let mut instructions = Vec::new();
        let mut pos = 0usize;
        while pos < code.len() {
            let off = c.start.saturating_add(pos as u32);
            let rest = &code[pos..];
            let decoded = dec
                .cs
                .disasm_count(rest, u64::from(off), 1)
                .ok()
                .and_then(|insns| {
                    insns.iter().next().map(|i| {
                        let text = match (i.mnemonic(), i.op_str()) {
                            (Some(m), Some(o)) if !o.is_empty() => format!("{m} {o}"),
                            (Some(m), _) => m.to_string(),
                            _ => "?".to_string(),
                        };
                        (i.len(), text)
                    })
                });
            let (len, text) = match decoded {
                Some((len, text)) if len > 0 => (len.min(rest.len()), text),
                _ => {
                    let n = dec.min_len.min(rest.len());
                    let bytes: Vec<String> =
                        rest[..n].iter().map(|b| format!("{b:#04x}")).collect();
                    (n, format!(".byte {}", bytes.join(", ")))
                }
            };
            let text = annotate_target(text, &code_map);
            let end = off.saturating_add(len as u32);
            instructions.push(Instruction {
                offset: off,
                bytes: rest[..len].iter().map(|b| format!("{b:02x}")).collect(),
                text,
                trap: traps.get(&off).map(|t| t.kind.clone()),
                safepoint_slots: safepoints.get(&end).map(|s| s.slots.clone()),
                wasm_offset: addrmap.lookup(off),
            });
            pos += len;
        }
        regions.push(DisasRegion {
            label: c.label.clone(),
            function: c.function,
            code_offset: c.start,
            code_size: c.len,
            instructions,
        });
    }
    Ok(Disassembly {
        arch: r.header.arch.clone(),
        regions,
    })
}

/// Renders a disassembly as text: one block per region.
pub fn render(d: &Disassembly) -> String {
    let mut out = String::new();
    for r in &d.regions {
        let what = match r.function {
            Some(f) => format!("function {f}"),
            None => "trampoline".to_string(),
        };
        let _ = writeln!(
            out,
            "{} ({what}, .text {:#x}, {} bytes)",
            sanitize(&r.label),
            r.code_offset,
            r.code_size
        );
        let text_width = r
            .instructions
            .iter()
            .map(|i| i.text.len())
            .max()
            .unwrap_or(0)
            .min(56);
        let bytes_width = r
            .instructions
            .iter()
            .map(|i| i.bytes.len() / 2 * 3)
            .max()
            .unwrap_or(0)
            .min(33)
            .saturating_sub(1);
        let mut last_wasm = None;
        for i in &r.instructions {
            let mut marks = Vec::new();
            if i.wasm_offset != last_wasm {
                if let Some(w) = i.wasm_offset {
                    marks.push(format!("wasm {w:#x}"));
                }
                last_wasm = i.wasm_offset;
            }
            if let Some(t) = &i.trap {
                marks.push(format!("trap: {t}"));
            }
            if let Some(s) = &i.safepoint_slots {
                let slots: Vec<String> = s.iter().map(|o| format!("sp+{o:#x}")).collect();
                marks.push(format!(
                    "safepoint: {} externref slot{} [{}]",
                    s.len(),
                    if s.len() == 1 { "" } else { "s" },
                    slots.join(" ")
                ));
            }
            let rel = i.offset.saturating_sub(r.code_offset);
            let bytes: Vec<&str> = (0..i.bytes.len() / 2)
                .filter_map(|k| i.bytes.get(2 * k..2 * k + 2))
                .collect();
            let mut line = format!(
                "  {:>6x}  {:<7} {:<bw$}  {:<tw$}",
                i.offset,
                format!("+{rel:#x}"),
                bytes.join(" "),
                i.text,
                bw = bytes_width,
                tw = text_width
            );
            if !marks.is_empty() {
                let _ = write!(line, "  ; {}", marks.join("; "));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}
