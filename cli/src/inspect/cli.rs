//! The `wasmc inspect` subcommand: its arguments and what it prints.
//!
//! Kept beside the library code so that `bin/wasmc.rs` only names the
//! variant. Errors come back as `anyhow` errors, which `main` prints as
//! `error: ...` with exit status 1; `--check` on an artifact that cannot be
//! loaded here lists the reasons on stdout and then fails the same way.

use super::{check, render, Options, Parts};
use anyhow::{Context, Result};
use std::io::Write as _;
use std::path::PathBuf;

/// Writes `s` to stdout. A closed pipe (`wasmc inspect app.o | head`) is not
/// an error: the reader has seen what it wanted.
fn emit(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

/// Arguments of `wasmc inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Artifact to inspect (an ELF object written by `wasmc compile`).
    pub artifact: PathBuf,
    /// Print one JSON document (schema: docs/inspect-json.md) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Show the functions table.
    #[arg(long)]
    pub functions: bool,
    /// Show the trap table.
    #[arg(long)]
    pub traps: bool,
    /// Show the stack maps (externref slots per safepoint).
    #[arg(long)]
    pub stack_maps: bool,
    /// Show the relocations.
    #[arg(long)]
    pub relocs: bool,
    /// Disassemble every function, or only FUNC (an index, a name, an export
    /// name, a symbol, or a builtin name), marking trap sites and safepoints.
    /// Put the artifact before `--disas` when FUNC is omitted.
    #[arg(long, value_name = "FUNC", num_args = 0..=1)]
    pub disas: Option<Option<String>>,
    /// Only validate: print "ok: loadable on this host" and exit 0, or list
    /// what does not fit this host and exit 1. Either way, list the imports
    /// the host must provide (WASI, `env`, ...).
    #[arg(long, conflicts_with_all = ["functions", "traps", "stack_maps", "relocs", "disas"])]
    pub check: bool,
}

/// The imports of one module name an artifact needs from its host.
#[derive(serde::Serialize)]
struct NeededImports {
    module: String,
    /// Who provides them, when wasmc knows: WASI preview 1 is provided by
    /// `wasmc run` and the wasmc-wasi crate.
    provider: Option<&'static str>,
    fields: Vec<String>,
}

/// The artifact's imports grouped by module, in import order; empty when
/// it cannot be read (`check` has reported that already).
fn host_imports(bytes: &[u8]) -> Vec<NeededImports> {
    let Ok(report) = super::inspect(bytes, None) else {
        return Vec::new();
    };
    let mut out: Vec<NeededImports> = Vec::new();
    for i in report.imports {
        let field = format!("{} ({})", i.field, i.kind);
        match out.iter_mut().find(|n| n.module == i.module) {
            Some(n) => n.fields.push(field),
            None => out.push(NeededImports {
                provider: (i.module == "wasi_snapshot_preview1")
                    .then_some("WASI preview 1: `wasmc run`, wasmc-wasi"),
                module: i.module,
                fields: vec![field],
            }),
        }
    }
    out
}

/// Runs `wasmc inspect`.
pub fn run(args: InspectArgs) -> Result<()> {
    let path = args.artifact.display().to_string();
    let bytes = std::fs::read(&args.artifact).with_context(|| format!("reading {path}"))?;
    if args.check {
        let host = check(&bytes).with_context(|| format!("inspecting {path}"))?;
        let problems = host.problems();
        let needs = host_imports(&bytes);
        let text = if args.json {
            #[derive(serde::Serialize)]
            struct CheckDoc<'a> {
                schema_version: u32,
                file: super::FileReport,
                host: &'a super::HostReport,
                needs_imports: &'a [NeededImports],
            }
            let doc = CheckDoc {
                schema_version: super::SCHEMA_VERSION,
                file: super::FileReport {
                    path: Some(path.clone()),
                    size: bytes.len() as u64,
                },
                host: &host,
                needs_imports: &needs,
            };
            format!("{}\n", serde_json::to_string_pretty(&doc)?)
        } else {
            let mut t = if problems.is_empty() {
                "ok: loadable on this host\n".to_string()
            } else {
                let mut t = format!("{path}: not loadable on this host:\n");
                for p in &problems {
                    t.push_str(&format!("  - {}\n", super::text::sanitize(p)));
                }
                t
            };
            if !needs.is_empty() {
                t.push_str(
                    "needs imports from the host (instantiation fails unless they are defined):\n",
                );
                for n in &needs {
                    let what = match n.provider {
                        Some(p) => format!(" ({p})"),
                        None => String::new(),
                    };
                    t.push_str(&super::text::sanitize(&format!(
                        "  {}{what}: {}",
                        n.module,
                        n.fields.join(", ")
                    )));
                    t.push('\n');
                }
            }
            t
        };
        emit(&text)?;
        if problems.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "{path} cannot be loaded on this host ({} problem{})",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
    }
    let opts = Options {
        parts: Parts {
            functions: args.functions,
            traps: args.traps,
            stack_maps: args.stack_maps,
            relocs: args.relocs,
        },
        json: args.json,
        disas: args.disas,
    };
    let out = render(&bytes, Some(&path), &opts).with_context(|| format!("inspecting {path}"))?;
    emit(&out)
}
