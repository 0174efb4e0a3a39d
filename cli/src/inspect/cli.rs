//! The `wasmc inspect` subcommand: its arguments and what it prints.
//!
//! Kept beside the library code so that `bin/wasmc.rs` only names the
//! variant. Errors come back as `anyhow` errors, which `main` prints as
//! `error: ...` with exit status 1; `--check` on an artifact that cannot be
//! loaded here lists the reasons on stdout and then fails the same way.

use super::{check, render_checked, Options, Parts};
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
    /// Also check the signature against this public key (KEY.pub from
    /// `wasmc keygen`): says whether it verifies, and with `--check` a
    /// signature that does not verify makes the artifact not loadable.
    #[arg(long, value_name = "KEY.pub")]
    pub key: Option<PathBuf>,
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

/// Whether `bytes` carry a valid signature by the key in file `key`, as the
/// loader decides with that key trusted and signatures required.
fn signature_verdict(bytes: &[u8], key: &std::path::Path) -> Result<Result<String, String>> {
    let text =
        std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let mut policy = wasmc_loader::TrustPolicy::new();
    policy
        .trust_key_file(&text)
        .with_context(|| format!("reading {}", key.display()))?;
    policy.require_signature(true);
    let a = super::parse(bytes)?;
    Ok(match policy.check(&a) {
        Ok(wasmc_loader::Verified::Signature { key_id }) => {
            Ok(format!("signature verifies (key {key_id})"))
        }
        Ok(wasmc_loader::Verified::ContentHash) => Err("no signature by the key".into()),
        Err(e) => Err(e.to_string()),
    })
}

/// Runs `wasmc inspect`; with `--json`, a failure is also printed as a JSON
/// object `{"schema_version": N, "error": {"message": "..."}}` on stdout.
pub fn run(args: InspectArgs) -> Result<()> {
    let json = args.json;
    let r = run_inner(args);
    if let (true, Err(e)) = (json, &r) {
        // `--check` already printed its document; anything else failed
        // before one was printed: say why, as JSON.
        if e.downcast_ref::<NotLoadable>().is_none() {
            // Typed, so that `schema_version` comes first as in every
            // document (`json!` builds a map that sorts its keys).
            #[derive(serde::Serialize)]
            struct ErrorDoc {
                schema_version: u32,
                error: ErrorMessage,
            }
            #[derive(serde::Serialize)]
            struct ErrorMessage {
                message: String,
            }
            let doc = ErrorDoc {
                schema_version: super::SCHEMA_VERSION,
                error: ErrorMessage {
                    message: format!("{e:#}"),
                },
            };
            emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
    }
    r
}

/// `--check` found problems (already printed).
#[derive(Debug)]
struct NotLoadable(String);

impl std::fmt::Display for NotLoadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotLoadable {}

fn run_inner(args: InspectArgs) -> Result<()> {
    let path = args.artifact.display().to_string();
    let bytes = std::fs::read(&args.artifact).with_context(|| format!("reading {path}"))?;
    let verdict = match &args.key {
        Some(k) => {
            Some(signature_verdict(&bytes, k).with_context(|| format!("inspecting {path}"))?)
        }
        None => None,
    };
    if args.check {
        let host = check(&bytes).with_context(|| format!("inspecting {path}"))?;
        let mut problems = host.problems();
        if let Some(Err(e)) = &verdict {
            problems.push(e.clone());
        }
        let needs = host_imports(&bytes);
        let text = if args.json {
            #[derive(serde::Serialize)]
            struct CheckDoc<'a> {
                schema_version: u32,
                file: super::FileReport,
                host: &'a super::HostReport,
                #[serde(skip_serializing_if = "Option::is_none")]
                signature_check: Option<serde_json::Value>,
                needs_imports: &'a [NeededImports],
            }
            let doc = CheckDoc {
                schema_version: super::SCHEMA_VERSION,
                file: super::FileReport {
                    path: Some(path.clone()),
                    size: bytes.len() as u64,
                },
                host: &host,
                signature_check: verdict.as_ref().map(verdict_json),
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
        return Err(NotLoadable(format!(
            "{path} cannot be loaded on this host ({} problem{})",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ))
        .into());
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
    let check_json = verdict.as_ref().filter(|_| args.json).map(verdict_json);
    let mut out = render_checked(&bytes, Some(&path), &opts, check_json.as_ref())
        .with_context(|| format!("inspecting {path}"))?;
    if let (Some(v), false) = (&verdict, args.json) {
        match v {
            Ok(m) => out.push_str(&format!("signature check: {m}\n")),
            Err(e) => out.push_str(&format!(
                "signature check: DOES NOT VERIFY: {}\n",
                super::text::sanitize(e)
            )),
        }
    }
    emit(&out)
}

fn verdict_json(v: &Result<String, String>) -> serde_json::Value {
    match v {
        Ok(m) => serde_json::json!({ "verifies": true, "detail": m }),
        Err(e) => serde_json::json!({ "verifies": false, "detail": e }),
    }
}
