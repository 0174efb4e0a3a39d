//! `wasmc run [OPTIONS] MODULE [ARGS]...`: runs a program the way
//! `wasmtime run` does.
//!
//! MODULE is a binary `.wasm`, a `.wat` text (both compiled in memory
//! through the same compile -> artifact -> load path as `wasmc compile`) or
//! an artifact written by `wasmc compile` (recognised by its ELF magic; its
//! content hash is checked). It is linked with WASI preview 1
//! (`wasmc-wasi`): everything after MODULE is the program's arguments
//! (`argv[0]` is MODULE as given), `--env` sets its environment (nothing is
//! inherited), `--dir` preopens directories, and stdin/stdout/stderr are the
//! process's. Without `--invoke`, the start function runs at instantiation,
//! then `_start` (or `main`) is called; with `--invoke NAME`, the arguments
//! are NAME's parameters and its results are printed one per line.
//!
//! Exit status (also in the README):
//!
//! | status | meaning |
//! |---|---|
//! | 0-125 | the program's: its `proc_exit` status, or 0 when the entry returns |
//! | 2 | the command line is wrong (also a bad `--invoke` name or argument) |
//! | 126 | MODULE is not a runnable module: not Wasm, WAT or a wasmc artifact, invalid, or an artifact this host cannot load |
//! | 127 | MODULE cannot be read |
//! | 128 | the module cannot be instantiated: an unknown or mistyped import, a resource limit, a `--dir` that cannot be opened |
//! | 134 | the program trapped (the trap and its Wasm backtrace are printed) or a host function failed; 128 + SIGABRT, as `wasmtime run` |
//!
//! WASI limits a program's own status to 0-125 (`proc_exit` with a larger
//! one is a trap), so the runner's statuses never collide with a program's
//! except for 2, which every command-line tool uses for usage errors.

use anyhow::{anyhow, Context};
use std::process::ExitCode;
use wasmc_compiler::CompileOptions;
use wasmc_loader::format::ValType;
use wasmc_loader::{Engine, Error, Linker, Module, Store, Val};

/// Exit status: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: MODULE is not a module this host can run.
pub const EXIT_NOT_A_MODULE: u8 = 126;
/// Exit status: MODULE cannot be read.
pub const EXIT_CANNOT_READ: u8 = 127;
/// Exit status: the module cannot be instantiated.
pub const EXIT_CANNOT_INSTANTIATE: u8 = 128;
/// Exit status: the program trapped or a host function failed.
pub const EXIT_TRAP: u8 = 134;

/// Arguments of `wasmc run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Export to call instead of `_start`/`main`; ARGS are then its
    /// parameters (integers, or floats for f32/f64) and its results are
    /// printed one per line.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// Preopen HOST_DIR for the program as GUEST_DIR (default: HOST_DIR).
    /// Paths never escape it (`..`, absolute paths and symlinks are
    /// resolved inside it). Repeatable.
    #[arg(long = "dir", value_name = "HOST_DIR[::GUEST_DIR]")]
    dirs: Vec<String>,
    /// Set an environment variable of the program (nothing is inherited).
    /// Repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    envs: Vec<String>,
    /// MODULE (a .wasm, a .wat or an artifact), then the program's
    /// arguments: everything after MODULE goes to the program.
    #[arg(
        value_name = "MODULE [ARGS]...",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    module_and_args: Vec<String>,
}

/// A failure of `wasmc run`, with the exit status of its class.
struct Failure {
    status: u8,
    error: anyhow::Error,
}

fn fail(status: u8) -> impl FnOnce(anyhow::Error) -> Failure {
    move |error| Failure { status, error }
}

/// Runs `wasmc run` and returns the process's exit status.
pub fn main(args: RunArgs) -> ExitCode {
    let status = match run(args) {
        Ok(status) => status,
        Err(Failure { status, error }) => {
            eprintln!("error: {error:#}");
            status
        }
    };
    // The program's output went through std's stdout, whose line buffer may
    // hold a last unterminated line.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    ExitCode::from(status)
}

/// The status a failed call of Wasm ends the process with: the program's
/// own for `proc_exit`, otherwise a trap or host failure.
fn call_failure(e: Error, what: &str) -> Result<u8, Failure> {
    if let Some(code) = wasmc_wasi::exit_code(&e) {
        // wasi-common accepts 0..126 only; anything else is its trap.
        return u8::try_from(code).map_err(|_| Failure {
            status: EXIT_TRAP,
            error: anyhow!("{what}: exit status {code} out of range"),
        });
    }
    let status = match e {
        Error::Link(_) | Error::Instantiation(_) | Error::Load(_) => EXIT_CANNOT_INSTANTIATE,
        _ => EXIT_TRAP,
    };
    Err(Failure {
        status,
        error: anyhow::Error::new(e).context(what.to_string()),
    })
}

fn load(engine: &Engine, path: &str) -> Result<Module, Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading {path}"))
        .map_err(fail(EXIT_CANNOT_READ))?;
    let not_a_module = fail(EXIT_NOT_A_MODULE);
    if bytes.starts_with(b"\x7fELF") {
        // The same first look as `wasmc inspect`, so that both name a
        // truncated or foreign file the same way.
        wasmc_cli::inspect::parse(&bytes)
            .with_context(|| format!("loading {path}"))
            .map_err(fail(EXIT_NOT_A_MODULE))?;
        let module = Module::from_bytes(engine, &bytes)
            .with_context(|| format!("loading {path}"))
            .map_err(fail(EXIT_NOT_A_MODULE))?;
        // The metadata is validated, but the code and the offsets into it
        // can only be trusted through the content hash; `run` takes files of
        // unknown origin, so it checks it.
        module
            .verify_content_hash()
            .with_context(|| format!("loading {path}"))
            .map_err(not_a_module)?;
        return Ok(module);
    }
    let is_wasm = bytes.starts_with(b"\0asm");
    let is_text = !is_wasm
        && std::str::from_utf8(&bytes).is_ok_and(|t| t.trim_start().starts_with(['(', ';']));
    if !is_wasm && !is_text {
        return Err(not_a_module(anyhow!(
            "loading {path}: not a WebAssembly module, WebAssembly text or wasmc artifact"
        )));
    }
    let artifact = wasmc_compiler::compile(&bytes, &CompileOptions::default())
        .with_context(|| format!("compiling {path}"))
        .map_err(fail(EXIT_NOT_A_MODULE))?;
    Module::from_bytes(engine, &artifact)
        .with_context(|| format!("loading the artifact compiled from {path}"))
        .map_err(not_a_module)
}

fn wasi_context(args: &RunArgs) -> Result<wasmc_wasi::SharedWasiCtx, Failure> {
    let usage = fail(EXIT_USAGE);
    let mut b = wasmc_wasi::WasiCtxBuilder::new();
    b.inherit_stdio();
    if args.invoke.is_none() {
        b.args(&args.module_and_args)
            .map_err(|e| usage(anyhow!("program arguments: {e}")))?;
    } else {
        b.arg(&args.module_and_args[0])
            .map_err(|e| usage(anyhow!("program arguments: {e}")))?;
    }
    for e in &args.envs {
        let Some((name, value)) = e.split_once('=') else {
            return Err(fail(EXIT_USAGE)(anyhow!(
                "--env `{e}`: expected NAME=VALUE"
            )));
        };
        b.env(name, value)
            .map_err(|err| fail(EXIT_USAGE)(anyhow!("--env `{e}`: {err}")))?;
    }
    for d in &args.dirs {
        let (host, guest) = d.split_once("::").unwrap_or((d, d));
        let dir = wasmc_wasi::open_dir(host)
            .with_context(|| format!("--dir: cannot open directory `{host}`"))
            .map_err(fail(EXIT_CANNOT_INSTANTIATE))?;
        b.preopened_dir(dir, guest)
            .map_err(|e| fail(EXIT_CANNOT_INSTANTIATE)(anyhow!("--dir `{d}`: {e}")))?;
    }
    Ok(wasmc_wasi::SharedWasiCtx::new(b.build()))
}

fn run(args: RunArgs) -> Result<u8, Failure> {
    let path = args.module_and_args[0].clone();
    let engine = Engine::default();
    let module = load(&engine, &path)?;
    let wasi = wasi_context(&args)?;
    let mut linker = Linker::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, &wasi)
        .context("defining WASI")
        .map_err(fail(EXIT_CANNOT_INSTANTIATE))?;
    let mut store = Store::new(&engine, ());
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(e) => return call_failure(e, "instantiating"),
    };
    let params = &args.module_and_args[1..];
    let name = match &args.invoke {
        Some(n) => n.clone(),
        None => {
            let Some(n) = ["_start", "main"]
                .into_iter()
                .find(|n| instance.get_func(&mut store, n).is_some())
            else {
                if !params.is_empty() {
                    return Err(fail(EXIT_USAGE)(anyhow!(
                        "arguments given but no --invoke and no `_start` or `main` export"
                    )));
                }
                return Ok(0);
            };
            n.to_string()
        }
    };
    let usage = fail(EXIT_USAGE);
    let func = instance
        .get_func(&mut store, &name)
        .ok_or_else(|| usage(anyhow!("no exported function `{name}`")))?;
    let ty = func.ty(&store);
    let vals = if args.invoke.is_some() {
        if params.len() != ty.params.len() {
            return Err(fail(EXIT_USAGE)(anyhow!(
                "`{name}` has type {ty}: expected {} arguments, got {}",
                ty.params.len(),
                params.len()
            )));
        }
        params
            .iter()
            .zip(&ty.params)
            .map(|(a, t)| parse_arg(a, *t))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(fail(EXIT_USAGE))?
    } else if !ty.params.is_empty() {
        return Err(fail(EXIT_USAGE)(anyhow!(
            "`{name}` has type {ty}: call it with --invoke {name} ARGS"
        )));
    } else {
        Vec::new()
    };
    let mut results = vec![Val::I32(0); ty.results.len()];
    if let Err(e) = func.call(&mut store, &vals, &mut results) {
        return call_failure(e, &format!("calling `{name}`"));
    }
    // A closed stdout (`wasmc run ... | head`) is not an error: the reader
    // has what it wanted. Anything else is reported once.
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for r in &results {
        match writeln!(out, "{}", show(r)) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => {
                return Err(fail(EXIT_TRAP)(
                    anyhow::Error::new(e).context("writing results"),
                ))
            }
            Ok(()) => {}
        }
    }
    Ok(0)
}

fn parse_arg(text: &str, ty: ValType) -> anyhow::Result<Val> {
    let bad = || anyhow!("argument `{text}` is not a valid {ty}");
    Ok(match ty {
        ValType::I32 => Val::I32(match text.parse::<i32>() {
            Ok(v) => v,
            Err(_) => text.parse::<u32>().map_err(|_| bad())? as i32,
        }),
        ValType::I64 => Val::I64(match text.parse::<i64>() {
            Ok(v) => v,
            Err(_) => text.parse::<u64>().map_err(|_| bad())? as i64,
        }),
        ValType::F32 => Val::F32(text.parse::<f32>().map_err(|_| bad())?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>().map_err(|_| bad())?.to_bits()),
        other => anyhow::bail!("cannot pass a {other} from the command line"),
    })
}

fn show(v: &Val) -> String {
    match v {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(x) => f32::from_bits(*x).to_string(),
        Val::F64(x) => f64::from_bits(*x).to_string(),
        Val::V128(x) => format!("{x:#034x}"),
        Val::FuncRef(None) | Val::ExternRef(None) => "null".into(),
        Val::FuncRef(Some(_)) => "funcref".into(),
        Val::ExternRef(Some(_)) => "externref".into(),
    }
}
