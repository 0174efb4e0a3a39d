//! The `wasmc` command line: `compile`, `inspect`, `run` (in `run.rs`),
//! `wast`, and `keygen`/`sign` for signed artifacts.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use wasmc_compiler::{CompileOptions, CpuSpec, Interruption, MemoryStrategy, OptLevel};

mod run;

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
    /// Run a WASI program or call an export: MODULE is a .wasm, a .wat or an
    /// artifact; everything after MODULE goes to the program.
    Run(run::RunArgs),
    /// Run WebAssembly spec-test scripts (.wast) through compile -> artifact -> load.
    Wast(WastArgs),
    /// Create an Ed25519 key pair for signing artifacts: KEY and KEY.pub.
    Keygen(KeygenArgs),
    /// Sign an existing artifact in place (adds or replaces its signature).
    Sign(SignArgs),
}

#[derive(clap::Args)]
struct KeygenArgs {
    /// Secret key file to create (must not exist); the public key goes to
    /// `<OUTPUT>.pub`.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(clap::Args)]
struct SignArgs {
    /// Secret key file written by `wasmc keygen`.
    #[arg(long)]
    key: PathBuf,
    /// The artifact to sign (rewritten in place; only its `.wasmc.sig`
    /// bytes change).
    artifact: PathBuf,
}

fn keygen(args: KeygenArgs) -> Result<()> {
    let id = wasmc_cli::sign::keygen(&args.output)?;
    println!(
        "key id {id}: secret key {}, public key {}",
        args.output.display(),
        wasmc_cli::sign::public_key_path(&args.output).display()
    );
    Ok(())
}

fn sign(args: SignArgs) -> Result<()> {
    let key = wasmc_cli::sign::read_secret_key(&args.key)?;
    let mut bytes = std::fs::read(&args.artifact)
        .with_context(|| format!("reading {}", args.artifact.display()))?;
    let id = wasmc_cli::sign::sign_artifact(&mut bytes, &key)
        .with_context(|| format!("signing {}", args.artifact.display()))?;
    write_atomically(&args.artifact, &bytes)?;
    println!("signed {} with key {id}", args.artifact.display());
    Ok(())
}

/// Writes to a temporary file and renames it over `path`, so a failed write
/// never leaves a truncated artifact, and a process that loaded the old file
/// through the trusted (mapping) path keeps its unchanged copy.
///
/// The temporary file sits beside `path` (a rename only works within one file
/// system), is named after this process so that it never is a file of the
/// user's (`app.o.tmp` could be) and two concurrent writers do not share it,
/// and is removed when anything fails: a write to a full disk or a rename
/// onto a directory leaves nothing behind. A symbolic link at `path` stays
/// a link: the file it points to is replaced.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    // Through a symbolic link, the file it names is replaced (as a plain
    // write through the link would change it), not the link itself.
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            resolved = std::fs::canonicalize(path)
                .with_context(|| format!("writing {}: resolving the link", path.display()))?;
            resolved.as_path()
        }
        _ => path,
    };
    let name = path
        .file_name()
        .with_context(|| format!("writing {}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".wasmc-tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("writing {}", path.display()))?;
    // From here on the temporary file is ours: remove it on any failure. A
    // file being replaced (`sign`, a recompile) keeps its permissions.
    let keep_mode = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => file.set_permissions(m.permissions()),
        _ => Ok(()),
    };
    if let Err(e) = keep_mode
        .and_then(|()| std::io::Write::write_all(&mut file, bytes))
        .and_then(|()| file.sync_all())
    {
        drop(file);
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::new(e).context(format!("writing {}", path.display())));
    }
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("writing {}", path.display()))
    })
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
    /// Compile threads (default and maximum: one per core). The output is
    /// identical for any value.
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// WebAssembly features: `-W tail-call=n` turns one off, `-W NAME` (or
    /// `=y`) on; comma-separated lists and repeats are accepted. Every feature
    /// wasmc implements is on by default. Names: mutable-global,
    /// saturating-float-to-int, sign-extension, multi-value, bulk-memory,
    /// reference-types, simd, tail-call, extended-const, multi-memory,
    /// memory64, relaxed-simd. Proposals wasmc does not implement (threads,
    /// exceptions, function-references, gc, ...) are off: `=n` is accepted,
    /// turning one on is refused.
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
    /// Sign the artifact with this secret key (from `wasmc keygen`).
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
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
    // Read the key first: a bad key path fails before a long compile.
    let key = match &args.sign {
        Some(k) => Some(wasmc_cli::sign::read_secret_key(k)?),
        None => None,
    };
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
    let mut artifact = wasmc_compiler::compile(&wasm, &opts)
        .with_context(|| format!("compiling {}", args.input.display()))?;
    if let Some(key) = &key {
        wasmc_cli::sign::sign_artifact(&mut artifact, key).context("signing the artifact")?;
    }
    write_atomically(&args.output, &artifact)
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
        Command::Run(a) => return run::main(a),
        Command::Wast(a) => wast(a),
        Command::Keygen(a) => keygen(a),
        Command::Sign(a) => sign(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
