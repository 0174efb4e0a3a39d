//! `wasmc run [OPTIONS] MODULE [ARGS]...`: runs a program the way
//! `wasmtime run` does.
//!
//! MODULE is a binary `.wasm`, a `.wat` text (both compiled in memory
//! through the same compile -> artifact -> load path as `wasmc compile`) or
//! an artifact written by `wasmc compile` (recognised by its ELF magic;
//! loaded from a sealed private copy and checked before any code is
//! executable: its content hash, or with `--trusted-key` a signature by one
//! of those keys, which a .wasm/.wat compiled here does not have). It is
//! linked with WASI preview 1 (`wasmc-wasi`; the store's data is the
//! program's WASI context): everything after MODULE is the program's
//! arguments (`argv[0]` is MODULE's file name, or `--argv0`), `--env` sets
//! its environment (nothing is inherited but the variables `--env NAME`
//! names), `--dir` preopens directories, and stdin/stdout/stderr are the
//! process's. Without `--invoke`, the start
//! function runs at instantiation, then `_start` (or `main`) is called;
//! with `--invoke NAME`, the arguments are NAME's parameters and its
//! results are printed one per line.
//!
//! `--timeout` and `--fuel` bound the run. A module compiled here gets the
//! checks they need (`wasmc compile --epoch-interruption` / `--fuel`); an
//! artifact must have been compiled with them. The timeout is a thread that
//! advances the engine's epoch when it expires: Wasm code traps at its next
//! function entry or loop header. A guest blocked in a host call (reading
//! stdin, sleeping in `poll_oneoff`) reaches no such check, so if the run
//! has not ended [`HOST_CALL_GRACE`] after the timeout, the thread ends the
//! process itself with the same status (and no Wasm backtrace).
//!
//! Exit status (the same table is in the README and `wasmc run --help`):
//!
//! | status | meaning |
//! |---|---|
//! | 0-125 | the program's: its `proc_exit` status, or 0 when the entry returns |
//! | 2 | the command line is wrong (also a bad `--invoke` name or argument) |
//! | 126 | MODULE is not a runnable module: not Wasm, WAT or a wasmc artifact, invalid, or an artifact this host cannot load |
//! | 127 | MODULE cannot be read |
//! | 128 | the module cannot be instantiated: an unknown or mistyped import, a resource limit, a `--dir` that cannot be opened, an artifact compiled without the checks `--timeout`/`--fuel` need |
//! | 134 | the program trapped (the trap and its Wasm backtrace are printed) or a host function failed; 128 + SIGABRT, as `wasmtime run` |
//! | 142 | `--timeout` expired; 128 + SIGALRM |
//! | 152 | `--fuel` ran out; 128 + SIGXCPU (a CPU budget used up) |
//!
//! WASI limits a program's own status to 0-125 (`proc_exit` with a larger
//! one is a trap), so the runner's statuses never collide with a program's,
//! except for 2, which every command-line tool uses for usage errors (and
//! which wasmc reports with an `error:` line before the entry point runs).
//! This is why the interruptions do not use `timeout(1)`'s 124 and 125:
//! a program may exit with those itself, and `timeout(1)` leaves that
//! ambiguous; the statuses above 128 follow the shell's "killed by signal"
//! convention, which `wasmtime run` also uses for traps.

use anyhow::{anyhow, Context};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use wasmc_compiler::{CompileOptions, Interruption, WasmFeatures};
use wasmc_loader::format::ValType;
use wasmc_loader::{Config, Engine, Error, Linker, Module, Store, TrapCode, TrustPolicy, Val};
use wasmc_wasi::WasiCtx;

/// Exit status: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: MODULE is not a module this host can run.
pub const EXIT_NOT_A_MODULE: u8 = 126;
/// Exit status: MODULE cannot be read.
pub const EXIT_CANNOT_READ: u8 = 127;
/// Exit status: the module cannot be instantiated.
pub const EXIT_CANNOT_INSTANTIATE: u8 = 128;
/// Exit status: the program trapped or a host function failed (128 +
/// SIGABRT).
pub const EXIT_TRAP: u8 = 134;
/// Exit status: `--timeout` expired (128 + SIGALRM).
pub const EXIT_TIMEOUT: u8 = 142;
/// Exit status: the guest used up its `--fuel` (128 + SIGXCPU).
pub const EXIT_OUT_OF_FUEL: u8 = 152;

/// How long after `--timeout` the watchdog waits for the guest to reach an
/// epoch check before it ends the process itself (the guest is then blocked
/// in a host call). Wasm code reaches a check within microseconds; the
/// margin is for a loaded machine.
pub const HOST_CALL_GRACE: Duration = Duration::from_secs(1);

/// The options `run` takes before MODULE: after MODULE they are the
/// program's arguments, which a hint points out.
const OPTIONS: &[&str] = &[
    "--invoke",
    "--dir",
    "--env",
    "--timeout",
    "--fuel",
    "--trusted-key",
];

/// Arguments of `wasmc run`.
#[derive(clap::Args)]
#[command(after_help = "\
Exit status:
  0-125  the program's own: its proc_exit status, or 0 when the entry returns
  2      the command line is wrong (also a bad --invoke name or argument,
         or a --trusted-key file that cannot be read)
  126    MODULE is not a runnable module (not Wasm, WAT or a wasmc artifact,
         invalid, damaged, not signed by a --trusted-key, or an artifact
         this host cannot load)
  127    MODULE cannot be read
  128    the module cannot be instantiated (unknown or mistyped import,
         resource limit, a --dir that cannot be opened, an artifact compiled
         without the checks --timeout/--fuel need)
  134    the program trapped or a host function failed (128 + SIGABRT)
  142    --timeout expired (128 + SIGALRM)
  152    --fuel ran out (128 + SIGXCPU)
A program's own status is at most 125 (WASI), so it never looks like one of
wasmc's, except 2.")]
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
    /// The program's `argv[0]` (default: MODULE's file name without its
    /// directories, as `wasmtime run` gives it, so that no host path
    /// leaks into the guest).
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,
    /// Set an environment variable of the program; `--env NAME` passes
    /// wasmc's own value of NAME, if it has one (nothing is inherited
    /// otherwise). Repeatable.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    envs: Vec<String>,
    /// Interrupt the guest after this long (`500ms`, `1s`, `2m`; units us,
    /// ms, s, m, h) and exit 142. A .wasm/.wat is compiled with the epoch
    /// checks this needs; an artifact must have been compiled with
    /// `--epoch-interruption`.
    #[arg(long, value_name = "DURATION", value_parser = wasmc_cli::duration::parse_duration)]
    timeout: Option<Duration>,
    /// Give the guest this much fuel (one unit per operator) and exit 152
    /// when it runs out. A .wasm/.wat is compiled with the fuel counting
    /// this needs; an artifact must have been compiled with `--fuel`.
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// WebAssembly features, as for `compile` (`-W tail-call=n`): a .wasm or
    /// .wat is compiled with them; an artifact that uses a feature they turn
    /// off is refused (exit 126).
    #[arg(short = 'W', value_name = "FEATURE[=y|n]")]
    wasm: Vec<String>,
    /// Run only artifacts signed by this public key (KEY.pub from `wasmc
    /// keygen`); repeat to accept several keys. Unsigned artifacts, those
    /// signed by other keys, and .wasm/.wat (compiled here, so unsigned)
    /// are refused (exit 126).
    #[arg(long, value_name = "KEY.pub")]
    trusted_key: Vec<std::path::PathBuf>,
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

/// Who ends the run: the main thread, or the `--timeout` watchdog when the
/// guest is stuck in a host call. Whoever claims it first reports; the
/// other stays silent, so the outcome is printed once.
static ENDED_BY: AtomicU8 = AtomicU8::new(RUNNING);
const RUNNING: u8 = 0;
const MAIN_THREAD: u8 = 1;
const WATCHDOG: u8 = 2;

/// Claims the end of the run for the main thread. If the watchdog has
/// claimed it, it is about to end the process: wait for that.
fn guest_finished() {
    if let Err(WATCHDOG) =
        ENDED_BY.compare_exchange(RUNNING, MAIN_THREAD, Ordering::SeqCst, Ordering::SeqCst)
    {
        loop {
            std::thread::park();
        }
    }
}

/// Starts the `--timeout` thread (detached: if the guest finishes first,
/// the process exits anyway).
fn start_watchdog(engine: Engine, timeout: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        engine.increment_epoch();
        std::thread::sleep(HOST_CALL_GRACE);
        if ENDED_BY
            .compare_exchange(RUNNING, WATCHDOG, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            eprintln!(
                "error: interrupted: the guest was still running when --timeout {timeout:?} \
                 expired (it was blocked in a host call for {HOST_CALL_GRACE:?} more, so there \
                 is no Wasm backtrace)"
            );
            // `exit` flushes what the program wrote to stdout without
            // waiting for a lock the main thread may hold.
            std::process::exit(EXIT_TIMEOUT.into());
        }
    });
}

/// Runs `wasmc run` and returns the process's exit status.
pub fn main(args: RunArgs) -> ExitCode {
    let result = run(args);
    guest_finished();
    let status = match result {
        Ok(status) => status,
        Err(Failure { status, error }) => {
            eprintln!("error: {}", describe(&error));
            status
        }
    };
    // The program's output went through std's stdout, whose line buffer may
    // hold a last unterminated line.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    ExitCode::from(status)
}

/// `error` and its causes, `: `-separated as `{:#}` prints them, less each
/// cause whose text the line already ends with. A host function's error
/// is its own source ([`Error::Host`] shows it and gives it as `source()`,
/// so that it downcasts), and wiggle's errors show their cause and give it
/// as source too: `{:#}` would print "Pointer out of bounds: Region { .. }"
/// up to three times.
fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The status a failed call of Wasm (instantiation included: the start
/// function runs then) ends the process with: the program's own for
/// `proc_exit`, the interruption's for `--timeout`/`--fuel`, otherwise a
/// trap or host failure.
fn call_failure(e: Error, what: &str, args: &RunArgs) -> Result<u8, Failure> {
    if let Some(code) = wasmc_wasi::exit_code(&e) {
        // wasi-common accepts 0..126 only; anything else is its trap.
        return u8::try_from(code).map_err(|_| Failure {
            status: EXIT_TRAP,
            error: anyhow!("{what}: exit status {code} out of range"),
        });
    }
    let trap = e.as_trap().map(|t| t.code);
    let setup = matches!(
        e,
        Error::Link(_) | Error::Instantiation(_) | Error::Load(_) | Error::Interruption(_)
    );
    let error = anyhow::Error::new(e).context(what.to_string());
    let (status, error) = match (trap, args.timeout, args.fuel) {
        (Some(TrapCode::Interrupted), Some(d), _) => (
            EXIT_TIMEOUT,
            anyhow!(
                "interrupted: the guest was still running when --timeout {d:?} expired ({error:#})"
            ),
        ),
        (Some(TrapCode::OutOfFuel), _, Some(n)) => (
            EXIT_OUT_OF_FUEL,
            anyhow!("out of fuel: the guest used all {n} units of --fuel ({error:#})"),
        ),
        _ if setup => (EXIT_CANNOT_INSTANTIATE, error),
        _ => (EXIT_TRAP, error),
    };
    Err(Failure { status, error })
}

/// Whether `path` with `bytes` is to be compiled (binary Wasm, or text
/// Wasm) rather than loaded as an artifact. A file named `.wat`/`.wasm` is
/// compiled whatever it holds, so that the compiler says what is wrong.
fn is_source(path: &str, bytes: &[u8]) -> bool {
    let named = matches!(
        Path::new(path).extension().and_then(|e| e.to_str()),
        Some("wat" | "wasm")
    );
    let text = std::str::from_utf8(bytes).is_ok_and(|t| t.trim_start().starts_with(['(', ';']));
    bytes.starts_with(b"\0asm") || named || text
}

/// Reads and loads MODULE: an artifact as it is, a .wasm/.wat compiled in
/// memory with the checks the run's `--timeout`/`--fuel` need.
fn load(
    engine: &Engine,
    path: &str,
    needs: Interruption,
    features: WasmFeatures,
) -> Result<Module, Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading {path}"))
        .map_err(fail(EXIT_CANNOT_READ))?;
    let not_a_module = fail(EXIT_NOT_A_MODULE);
    if bytes.starts_with(b"\x7fELF") {
        // The same first look as `wasmc inspect`, so that both name a
        // truncated or foreign file the same way.
        let parsed = wasmc_cli::inspect::parse(&bytes)
            .with_context(|| format!("loading {path}"))
            .map_err(fail(EXIT_NOT_A_MODULE))?;
        // The artifact was compiled already; `-W` can only refuse it.
        let off = parsed.header().wasm_features.difference(features);
        if let Some(name) = off.names().into_iter().next() {
            return Err(not_a_module(anyhow!(
                "loading {path}: the artifact uses WebAssembly feature `{name}`, which -W turned off"
            )));
        }
        // The safe path: a sealed private copy, checked per the engine's
        // trust policy (content hash, or the signature it requires) before
        // any code is executable.
        return Module::from_bytes(engine, &bytes)
            .with_context(|| format!("loading {path}"))
            .map_err(not_a_module);
    }
    if !is_source(path, &bytes) {
        return Err(not_a_module(anyhow!(
            "loading {path}: not a WebAssembly module, WebAssembly text or wasmc artifact"
        )));
    }
    let opts = CompileOptions {
        interruption: needs,
        features,
        ..CompileOptions::default()
    };
    let artifact = wasmc_compiler::compile(&bytes, &opts)
        .with_context(|| format!("compiling {path}"))
        .map_err(fail(EXIT_NOT_A_MODULE))?;
    Module::from_bytes(engine, &artifact)
        .with_context(|| format!("loading the artifact compiled from {path}"))
        .map_err(not_a_module)
}

/// Whether the program can read the arguments given after MODULE.
fn reads_args(module: &Module) -> bool {
    module
        .imports()
        .iter()
        .any(|i| i.module == wasmc_wasi::MODULE && i.name == "args_get")
}

/// `wasmc run app.o --invoke f` (options after MODULE) gives the options to
/// the program: when that cannot be what was meant (the program cannot read
/// them), the error says where wasmc's options go.
fn late_option_hint(params: &[String]) -> Option<String> {
    let o = params.iter().find(|p| OPTIONS.contains(&p.as_str()))?;
    Some(format!(
        " (`{o}` after MODULE is an argument of the program: put wasmc's options before MODULE)"
    ))
}

/// The program's WASI context; the store holds it (its data is the context).
fn wasi_context(args: &RunArgs) -> Result<WasiCtx, Failure> {
    let usage = fail(EXIT_USAGE);
    let mut b = wasmc_wasi::WasiCtxBuilder::new();
    b.inherit_stdio();
    let module = &args.module_and_args[0];
    let argv0 = args.argv0.clone().unwrap_or_else(|| {
        std::path::Path::new(module)
            .file_name()
            .map_or_else(|| module.clone(), |n| n.to_string_lossy().into_owned())
    });
    b.arg(&argv0)
        .map_err(|e| fail(EXIT_USAGE)(anyhow!("program arguments: {e}")))?;
    if args.invoke.is_none() {
        b.args(&args.module_and_args[1..])
            .map_err(|e| usage(anyhow!("program arguments: {e}")))?;
    }
    for e in &args.envs {
        let (name, value) = match e.split_once('=') {
            Some((name, value)) => (name, value.to_string()),
            // `--env NAME`: wasmc's own value, as `wasmtime run` passes it
            // (the one variable asked for; an unset one stays unset).
            None => match std::env::var(e) {
                Ok(value) => (e.as_str(), value),
                Err(std::env::VarError::NotPresent) => continue,
                Err(err) => return Err(fail(EXIT_USAGE)(anyhow!("--env `{e}`: {err}"))),
            },
        };
        b.env(name, &value)
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
    Ok(b.build())
}

/// The engine: its trust policy requires a signature by one of the
/// `--trusted-key`s when there are any.
fn engine(args: &RunArgs) -> Result<Engine, Failure> {
    let usage = fail(EXIT_USAGE);
    let mut policy = TrustPolicy::new();
    for k in &args.trusted_key {
        let text = std::fs::read_to_string(k)
            .with_context(|| format!("--trusted-key: reading {}", k.display()))
            .map_err(fail(EXIT_USAGE))?;
        policy
            .trust_key_file(&text)
            .with_context(|| format!("--trusted-key: reading {}", k.display()))
            .map_err(fail(EXIT_USAGE))?;
    }
    policy.require_signature(!args.trusted_key.is_empty());
    let mut config = Config::new();
    config.trust(policy);
    Engine::new(&config).map_err(|e| usage(anyhow!("{e}")))
}

fn run(args: RunArgs) -> Result<u8, Failure> {
    let path = args.module_and_args[0].clone();
    // MODULE takes hyphenated values so that the program's own options pass
    // through after it; before it, a word starting with `-` is an option
    // `run` does not know, not a file (`./-name` names such a file).
    if path.starts_with('-') && path.len() > 1 {
        return Err(fail(EXIT_USAGE)(anyhow!(
            "unknown option `{path}` for `wasmc run` (see `wasmc run --help`; \
             a module whose name starts with `-` is given as `./{path}`)"
        )));
    }
    let engine = engine(&args)?;
    let needs = Interruption {
        epochs: args.timeout.is_some(),
        fuel: args.fuel.is_some(),
    };
    let features = crate::wasm_features(&args.wasm).map_err(fail(EXIT_USAGE))?;
    let module = load(&engine, &path, needs, features)?;
    let wasi = wasi_context(&args)?;
    let mut linker = Linker::<WasiCtx>::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx)
        .context("defining WASI")
        .map_err(fail(EXIT_CANNOT_INSTANTIATE))?;
    if args.invoke.is_none() && !reads_args(&module) {
        if let Some(hint) = late_option_hint(&args.module_and_args[1..]) {
            return Err(fail(EXIT_USAGE)(anyhow!(
                "{path} cannot read its arguments (it imports no `args_get`){hint}"
            )));
        }
    }
    let mut store = Store::new(&engine, wasi);
    // Before instantiation: the start function runs under the same limits,
    // and the store then refuses code compiled without the checks.
    if let Some(n) = args.fuel {
        store
            .set_fuel(n)
            .context("--fuel")
            .map_err(fail(EXIT_CANNOT_INSTANTIATE))?;
    }
    if let Some(d) = args.timeout {
        store
            .set_epoch_deadline(1)
            .context("--timeout")
            .map_err(fail(EXIT_CANNOT_INSTANTIATE))?;
        start_watchdog(engine.clone(), d);
    }
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(e) => {
            guest_finished();
            return call_failure(e, "instantiating", &args);
        }
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
                    let hint = late_option_hint(params).unwrap_or_default();
                    return Err(fail(EXIT_USAGE)(anyhow!(
                        "arguments given but no --invoke and no `_start` or `main` export{hint}"
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
    let outcome = func.call(&mut store, &vals, &mut results);
    // From here on the outcome is reported by this thread, not the watchdog.
    guest_finished();
    if let Err(e) = outcome {
        return call_failure(e, &format!("calling `{name}`"), &args);
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
