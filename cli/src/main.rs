//! The `wasmc` command line: `compile`, `inspect`, `run` and `wast`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use wasmc_compiler::{CompileOptions, CpuSpec, Interruption, MemoryStrategy, OptLevel};
use wasmc_loader::format::ValType;
use wasmc_loader::{Engine, Linker, Module, Store, TrapCode, Val};

#[derive(Parser)]
#[command(
    name = "wasmc",
    version,
    about = "Ahead-of-time WebAssembly compiler and runner"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a WebAssembly module (.wasm or .wat) into a native ELF object.
    Compile(CompileArgs),
    /// Show what an artifact holds: header, sections, functions, traps, stack
    /// maps, segments; `--json` for scripts, `--check` to test loadability.
    Inspect(wasmc_cli::inspect::cli::InspectArgs),
    /// Load a compiled artifact and call one of its exports.
    Run(RunArgs),
    /// Run WebAssembly spec-test scripts (.wast) through compile -> artifact -> load.
    Wast(WastArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum OptArg {
    /// No optimization: fastest compile.
    None,
    /// Optimize for speed (default).
    Speed,
    /// Optimize for speed and code size.
    SpeedAndSize,
}

#[derive(Clone, Copy, ValueEnum)]
enum BoundsArg {
    /// Reserve 4 GiB plus a 2 GiB guard region per memory; out-of-bounds
    /// accesses fault into unmapped pages, no explicit checks (default).
    Guard,
    /// Compare every access with the memory's length; for hosts that cannot
    /// reserve that much address space.
    Explicit,
}

#[derive(clap::Args)]
struct CompileArgs {
    /// Input module: binary .wasm or text .wat.
    input: PathBuf,
    /// Output artifact (ELF relocatable object).
    #[arg(short, long)]
    output: PathBuf,
    /// Target triple to compile for (default: this host).
    #[arg(long)]
    target: Option<String>,
    /// CPU features the code may use: `baseline` (portable: x86-64-v2 on
    /// x86-64), `native` (this machine's CPU), or a comma-separated list of
    /// features or CPU presets added to the baseline (e.g. `avx2,bmi2` or
    /// `x86-64-v3`). The artifact records what it needs; the loader refuses to
    /// run it on a CPU without it.
    #[arg(long, default_value = "baseline")]
    cpu: String,
    /// Cranelift optimization level.
    #[arg(long, value_enum, default_value = "speed")]
    opt_level: OptArg,
    /// How linear-memory accesses are kept in bounds.
    #[arg(long, value_enum, default_value = "guard")]
    bounds_checks: BoundsArg,
    /// Compile threads (default: one per core). The output is identical for any value.
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// WebAssembly features: `-W tail-call=n` turns one off, `-W NAME` (or
    /// `=y`) on; comma-separated lists and repeats are accepted. Every feature
    /// wasmc implements is on by default. Names: mutable-global,
    /// saturating-float-to-int, sign-extension, multi-value, bulk-memory,
    /// reference-types, simd, tail-call, extended-const, multi-memory,
    /// memory64, relaxed-simd.
    #[arg(short = 'W', value_name = "FEATURE[=y|n]")]
    wasm: Vec<String>,
    /// Check the engine's epoch at every function entry and loop header, so
    /// that a store's epoch deadline (`wasmc run --timeout`,
    /// `Store::set_epoch_deadline`) can interrupt the code.
    #[arg(long)]
    epoch_interruption: bool,
    /// Count fuel (one unit per operator) and trap when the store's fuel
    /// (`wasmc run --fuel`, `Store::set_fuel`) is used up.
    #[arg(long)]
    fuel: bool,
}

/// The features `-W` options leave on.
fn wasm_features(toggles: &[String]) -> Result<wasmc_compiler::WasmFeatures> {
    let mut f = CompileOptions::default().features;
    for t in toggles {
        f.apply_toggles(t)
            .map_err(|e| anyhow::anyhow!("-W {t}: {e}"))?;
    }
    Ok(f)
}

fn compile(args: CompileArgs) -> Result<()> {
    let wasm =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    if args.jobs == Some(0) {
        anyhow::bail!("-j must be at least 1");
    }
    let opts = CompileOptions {
        target: args.target,
        cpu: args.cpu.parse::<CpuSpec>().map_err(anyhow::Error::msg)?,
        opt_level: args.opt_level.level(),
        memory: args.bounds_checks.strategy(),
        threads: args.jobs,
        features: wasm_features(&args.wasm)?,
        interruption: Interruption {
            epochs: args.epoch_interruption,
            fuel: args.fuel,
        },
    };
    let artifact = wasmc_compiler::compile(&wasm, &opts)
        .with_context(|| format!("compiling {}", args.input.display()))?;
    // Write to a temporary file and rename, so a failed write never leaves a
    // truncated artifact where a build system expects a good one.
    let tmp = args.output.with_extension("o.tmp");
    std::fs::write(&tmp, &artifact).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(())
}

#[derive(clap::Args)]
struct RunArgs {
    /// The artifact (an object written by `wasmc compile`), or a .wasm/.wat
    /// module, which is compiled first (with the checks that `--timeout`
    /// and `--fuel` need).
    artifact: PathBuf,
    /// Interrupt the guest after this long (`500ms`, `1s`, `2m`): a thread
    /// advances the engine's epoch when it expires. The code must be compiled
    /// with `--epoch-interruption`. Exit code 124 when it fires.
    #[arg(long, value_parser = wasmc_cli::duration::parse_duration)]
    timeout: Option<Duration>,
    /// Give the guest this much fuel (one unit per operator). The code must
    /// be compiled with `--fuel`. Exit code 125 when it runs out.
    #[arg(long)]
    fuel: Option<u64>,
    /// Export to call. Without it, instantiating runs the start function and
    /// then the `_start` or `main` export, if there is one, is called.
    #[arg(long)]
    invoke: Option<String>,
    /// Arguments: integers, or floats for f32/f64 parameters.
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

fn parse_arg(text: &str, ty: ValType) -> Result<Val> {
    let bad = || anyhow::anyhow!("argument `{text}` is not a valid {ty}");
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

/// Exit code of `wasmc run` when `--timeout` interrupted the guest (as
/// `timeout(1)`).
const EXIT_TIMEOUT: u8 = 124;
/// Exit code of `wasmc run` when the guest used up its `--fuel`.
const EXIT_OUT_OF_FUEL: u8 = 125;

/// Why `run` stopped the guest, for the message and the exit code; with
/// the error that reported it (the trap and its backtrace).
#[derive(Debug)]
enum Stopped {
    Timeout(Duration, String),
    OutOfFuel(u64, String),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Timeout(d, e) => write!(
                f,
                "interrupted: the guest was still running when --timeout {d:?} expired ({e})"
            ),
            Stopped::OutOfFuel(n, e) => {
                write!(
                    f,
                    "out of fuel: the guest used all {n} units of --fuel ({e})"
                )
            }
        }
    }
}

impl std::error::Error for Stopped {}

/// Turns an interruption trap into [`Stopped`]; other errors pass through.
fn classify(e: anyhow::Error, args: &RunArgs) -> anyhow::Error {
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<wasmc_loader::Error>())
        .and_then(|e| e.as_trap())
        .map(|t| t.code);
    let detail = format!("{e:#}");
    anyhow::Error::new(match (code, args.timeout, args.fuel) {
        (Some(TrapCode::Interrupted), Some(d), _) => Stopped::Timeout(d, detail),
        (Some(TrapCode::OutOfFuel), _, Some(n)) => Stopped::OutOfFuel(n, detail),
        _ => return e,
    })
}

/// Loads `path`: an artifact as it is, a .wasm/.wat module compiled first
/// with the instrumentation the run needs.
fn load_or_compile(engine: &Engine, path: &Path, needs: Interruption) -> Result<Module> {
    // A module is binary Wasm, or a file named .wat/.wasm; anything else is
    // loaded as an artifact (so a damaged one is reported as such).
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let named_module = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("wat" | "wasm")
    );
    if !bytes.starts_with(b"\0asm") && !named_module {
        return Module::from_file(engine, path)
            .with_context(|| format!("loading {}", path.display()));
    }
    let opts = CompileOptions {
        interruption: needs,
        ..CompileOptions::default()
    };
    let artifact = wasmc_compiler::compile(&bytes, &opts)
        .with_context(|| format!("compiling {}", path.display()))?;
    Module::from_bytes(engine, &artifact).with_context(|| format!("loading {}", path.display()))
}

fn run(args: RunArgs) -> Result<()> {
    run_guest(&args).map_err(|e| classify(e, &args))
}

fn run_guest(args: &RunArgs) -> Result<()> {
    let engine = Engine::default();
    let needs = Interruption {
        epochs: args.timeout.is_some(),
        fuel: args.fuel.is_some(),
    };
    let module = load_or_compile(&engine, &args.artifact, needs)?;
    // The metadata is validated, but the code and the offsets into it can
    // only be trusted through the content hash; the CLI runs files of unknown
    // origin, so it checks it (a service may skip it for its own artifacts).
    module
        .verify_content_hash()
        .with_context(|| format!("loading {}", args.artifact.display()))?;
    let mut store = Store::new(&engine, ());
    // Before instantiation: the start function runs under the same limits,
    // and the store refuses modules compiled without the checks.
    if let Some(n) = args.fuel {
        store.set_fuel(n)?;
    }
    if let Some(d) = args.timeout {
        store.set_epoch_deadline(1)?;
        let engine = engine.clone();
        // Detached: if the guest finishes first, the process exits anyway.
        std::thread::spawn(move || {
            std::thread::sleep(d);
            engine.increment_epoch();
        });
    }
    let linker = Linker::new(&engine);
    let instance = linker
        .instantiate(&mut store, &module)
        .context("instantiating")?;
    let name = match &args.invoke {
        Some(n) => n.clone(),
        None => {
            let Some(n) = ["_start", "main"]
                .into_iter()
                .find(|n| instance.get_func(&mut store, n).is_some())
            else {
                if !args.args.is_empty() {
                    anyhow::bail!(
                        "arguments given but no --invoke and no `_start` or `main` export"
                    );
                }
                return Ok(());
            };
            n.to_string()
        }
    };
    let func = instance
        .get_func(&mut store, &name)
        .with_context(|| format!("no exported function `{name}`"))?;
    let ty = func.ty(&store);
    if args.args.len() != ty.params.len() {
        anyhow::bail!(
            "`{name}` has type {ty}: expected {} arguments, got {}",
            ty.params.len(),
            args.args.len()
        );
    }
    let params = args
        .args
        .iter()
        .zip(&ty.params)
        .map(|(a, t)| parse_arg(a, *t))
        .collect::<Result<Vec<_>>>()?;
    let mut results = vec![Val::I32(0); ty.results.len()];
    func.call(&mut store, &params, &mut results)
        .with_context(|| format!("calling `{name}`"))?;
    for r in &results {
        println!("{}", show(r));
    }
    Ok(())
}

#[derive(clap::Args)]
struct WastArgs {
    /// Scripts to run.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Cranelift optimization level for every module.
    #[arg(long, value_enum, default_value = "speed")]
    opt_level: OptArg,
    /// How linear-memory accesses are kept in bounds.
    #[arg(long, value_enum, default_value = "guard")]
    bounds_checks: BoundsArg,
    /// WebAssembly features, as for `compile` (`-W multi-memory=n`).
    #[arg(short = 'W', value_name = "FEATURE[=y|n]")]
    wasm: Vec<String>,
}

impl OptArg {
    fn level(self) -> OptLevel {
        match self {
            OptArg::None => OptLevel::None,
            OptArg::Speed => OptLevel::Speed,
            OptArg::SpeedAndSize => OptLevel::SpeedAndSize,
        }
    }
}

impl BoundsArg {
    fn strategy(self) -> MemoryStrategy {
        match self {
            BoundsArg::Guard => CompileOptions::default().memory,
            BoundsArg::Explicit => MemoryStrategy::Explicit,
        }
    }
}

fn wast(args: WastArgs) -> Result<()> {
    let opts = wasmc_cli::wast::WastOptions {
        compile: CompileOptions {
            opt_level: args.opt_level.level(),
            memory: args.bounds_checks.strategy(),
            features: wasm_features(&args.wasm)?,
            ..CompileOptions::default()
        },
        artifact_dir: None,
    };
    let (mut passed, mut failed) = (0, 0);
    for file in &args.files {
        let report = wasmc_cli::wast::run_file(file, &opts).map_err(anyhow::Error::msg)?;
        print!("{}", report.failure_lines());
        passed += report.passed;
        failed += report.failed();
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        anyhow::bail!("{failed} command(s) failed");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile(a) => compile(a),
        Command::Inspect(a) => wasmc_cli::inspect::cli::run(a),
        Command::Run(a) => run(a),
        Command::Wast(a) => wast(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<Stopped>() {
                Some(Stopped::Timeout(..)) => ExitCode::from(EXIT_TIMEOUT),
                Some(Stopped::OutOfFuel(..)) => ExitCode::from(EXIT_OUT_OF_FUEL),
                None => ExitCode::FAILURE,
            }
        }
    }
}
