//! `wasmc-fuzz`: runs the fuzzers of `wasmc_tests::fuzz` for a number of
//! cases or a time, in worker processes (so that a crash is a reported
//! failure with its seed, not the end of the run), and minimizes and writes
//! a reproducer for every failure.
//!
//! ```text
//! wasmc-fuzz [gc|diff|all] [--cases N] [--seconds T] [--seed S] [--jobs J]
//!            [--out DIR] [--no-minimize]
//!     environment: WASMC_FUZZ_CASES, WASMC_FUZZ_SECONDS, WASMC_FUZZ_SEED,
//!                  WASMC_FUZZ_JOBS, WASMC_FUZZ_OUT
//! wasmc-fuzz case gc|diff SEED [+KEPT,...|-REMOVED,...]
//!     replay one case (exit 1 on failure); a gc program can be cut down to
//!     the statements and commands (node numbers) kept or removed
//! wasmc-fuzz show gc|diff SEED [+KEPT,...|-REMOVED,...]
//!     print a program's modules and commands
//! ```
//!
//! Exit status: 0 if no case failed, 1 otherwise. `WASMC_FUZZ_CASE_TIMEOUT`
//! (seconds, default 120) is how long one case may run before it counts as a
//! hang; with `WASMC_FUZZ_VERBOSE` set, `case` prints the phase times of a gc
//! program or the outcome of every differential call.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmc_tests::fuzz::gc_model::{self, Program};
use wasmc_tests::fuzz::{differential, Outcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gc,
    Diff,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gc => "gc",
            Kind::Diff => "diff",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "gc" => Some(Kind::Gc),
            "diff" => Some(Kind::Diff),
            _ => None,
        }
    }
}

/// A node list argument: `+A,B,...` keeps only those statements and
/// commands, `-A,B,...` removes those; absent keeps everything.
fn parse_nodes(seed: u64, s: Option<&String>) -> BTreeSet<u32> {
    let Some(s) = s else {
        return BTreeSet::new();
    };
    let list = |t: &str| -> BTreeSet<u32> {
        t.split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().expect("node numbers"))
            .collect()
    };
    if let Some(keep) = s.strip_prefix('+') {
        let keep = list(keep);
        let p = Program::generate(seed);
        (0..p.node_count()).filter(|n| !keep.contains(n)).collect()
    } else {
        list(s.strip_prefix('-').unwrap_or(s))
    }
}

/// One case in this process.
fn run_case(kind: Kind, seed: u64, removed: &BTreeSet<u32>) -> Outcome {
    match kind {
        Kind::Gc => gc_model::run::run(&Program::generate(seed).without(removed)),
        Kind::Diff => differential::run(seed),
    }
}

/// `worker KIND FIRST STEP COUNT DEADLINE_MS`: runs seeds FIRST, FIRST+STEP,
/// ... (COUNT of them, or until the deadline if COUNT is 0), reporting each
/// on stdout: `S seed` before it, then `P`, `K reason` or `F message`.
fn worker(args: &[String]) -> ExitCode {
    let kind = Kind::parse(&args[0]).expect("kind");
    let first: u64 = args[1].parse().expect("first");
    let step: u64 = args[2].parse().expect("step");
    let count: u64 = args[3].parse().expect("count");
    let deadline: u128 = args[4].parse().expect("deadline");
    let out = std::io::stdout();
    let mut seed = first;
    let mut done = 0;
    loop {
        if count != 0 && done == count {
            break;
        }
        if count == 0 && now_ms() >= deadline {
            break;
        }
        let mut o = out.lock();
        writeln!(o, "S {seed}").unwrap();
        o.flush().unwrap();
        drop(o);
        let line = match run_case(kind, seed, &BTreeSet::new()) {
            Outcome::Pass => "P".to_string(),
            Outcome::Skip(r) => format!("K {}", r.replace('\n', " ")),
            Outcome::Fail(m) => format!("F {}", m.replace('\n', " ")),
        };
        let mut o = out.lock();
        writeln!(o, "{line}").unwrap();
        o.flush().unwrap();
        seed += step;
        done += 1;
    }
    ExitCode::SUCCESS
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// How long one case may run before it counts as a hang
/// (`WASMC_FUZZ_CASE_TIMEOUT`, seconds).
fn case_timeout() -> Duration {
    Duration::from_secs(env_u64("WASMC_FUZZ_CASE_TIMEOUT").unwrap_or(120))
}

/// Replays one case in a child process: `None` if it passed (or skipped),
/// else what went wrong (including a crash or a hang).
fn replay(kind: Kind, seed: u64, removed: &BTreeSet<u32>) -> Option<String> {
    let mut child = Command::new(own_exe())
        .args(["case", kind.name(), &seed.to_string()])
        .arg(format!("-{}", join(removed)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > case_timeout() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let msg = reader.join().unwrap_or_default().trim().to_string();
    match status {
        Some(st) if st.success() => None,
        Some(st) => Some(if msg.is_empty() {
            format!("crashed ({st})")
        } else {
            msg
        }),
        None => Some(format!("hung (no result in {:?})", case_timeout())),
    }
}

fn join(nodes: &BTreeSet<u32>) -> String {
    let v: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    v.join(",")
}

/// All node numbers of `seed`'s program not in `removed`.
fn kept(seed: u64, removed: &BTreeSet<u32>) -> BTreeSet<u32> {
    let p = Program::generate(seed);
    (0..p.node_count())
        .filter(|n| p.has_node(*n) && !removed.contains(n))
        .collect()
}

/// Removes statements and commands while the program still fails.
fn minimize(seed: u64, budget: Duration) -> BTreeSet<u32> {
    let p = Program::generate(seed);
    let nodes: Vec<u32> = (0..p.node_count()).filter(|n| p.has_node(*n)).collect();
    let mut removed = BTreeSet::new();
    let start = Instant::now();
    let mut chunk = nodes.len().div_ceil(2).max(1);
    loop {
        let left: Vec<u32> = nodes
            .iter()
            .copied()
            .filter(|n| !removed.contains(n))
            .collect();
        let mut progress = false;
        for part in left.chunks(chunk) {
            if start.elapsed() > budget {
                return removed;
            }
            let mut try_set = removed.clone();
            try_set.extend(part.iter().copied());
            if replay(Kind::Gc, seed, &try_set).is_some() {
                removed = try_set;
                progress = true;
            }
        }
        if !progress {
            if chunk == 1 {
                return removed;
            }
            chunk = chunk.div_ceil(2);
        }
    }
}

/// The reproducer text of a gc program: everything needed to rerun it.
fn describe(p: &Program) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        ";; seed {}: opt-level {}, gc stress {}\n",
        p.seed,
        if p.speed { "speed" } else { "none" },
        p.stress
    ));
    s.push_str(";; host tables (min, max, filled with $gseg):\n");
    for (i, (d, f)) in p.host_tables.iter().enumerate() {
        s.push_str(&format!(";;   ht{i}: {d:?} filled {f}\n"));
    }
    s.push_str(";; provider module (instance \"prov\"):\n");
    for l in gc_model::wat::provider(p).lines() {
        s.push_str(&format!(";;   {l}\n"));
    }
    s.push_str(";; host commands, in order:\n");
    for c in &p.cmds {
        s.push_str(&format!(";;   {c:?}\n"));
    }
    s.push_str(";; main module:\n");
    s.push_str(&gc_model::wat::main(p));
    s.push('\n');
    s
}

fn write_reproducer(kind: Kind, seed: u64, removed: &BTreeSet<u32>, msg: &str, out: &Path) {
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("cannot create {}: {e}", out.display());
        return;
    }
    match kind {
        Kind::Gc => {
            let p = Program::generate(seed).without(removed);
            let path = out.join(format!("gc-{seed}.wat"));
            let keep = join(&kept(seed, removed));
            let text = format!(
                ";; {msg}\n;; replay: wasmc-fuzz case gc {seed} +{keep}\n\
                 ;; regression entry for tests/tests/gc_model.rs: ({seed}, &[{keep}])\n{}",
                describe(&p)
            );
            match std::fs::write(&path, text) {
                Ok(()) => eprintln!("  reproducer: {}", path.display()),
                Err(e) => eprintln!("  cannot write {}: {e}", path.display()),
            }
        }
        Kind::Diff => {
            let Some(wasm) = differential::module(seed) else {
                return;
            };
            let path = out.join(format!("diff-{seed}.wasm"));
            let _ = std::fs::write(&path, &wasm);
            let wat = diff_text(&wasm);
            let wpath = out.join(format!("diff-{seed}.wat"));
            let o = differential::options(seed);
            let text = format!(
                ";; {msg}\n;; replay: wasmc-fuzz case diff {seed}\n\
                 ;; profile {:?}, opt-level {:?}, memory {:?}, interruption {}\n{wat}",
                differential::profile(seed),
                o.opt_level,
                o.memory,
                o.interruption
            );
            match std::fs::write(&wpath, text) {
                Ok(()) => eprintln!("  reproducer: {} (and .wasm)", wpath.display()),
                Err(e) => eprintln!("  cannot write {}: {e}", wpath.display()),
            }
        }
    }
}

/// The text of a differential case's module, after that of its provider
/// module if it has one (the edges profile's: see
/// `differential::PROVIDER_SECTION`).
fn diff_text(wasm: &[u8]) -> String {
    let main = wasmprinter::print_bytes(wasm).unwrap_or_default();
    match differential::provider_of(wasm) {
        Some(p) => format!(
            ";; provider module, instantiated first as \"p\":\n{}\n;; main module:\n{main}",
            wasmprinter::print_bytes(&p).unwrap_or_default()
        ),
        None => main,
    }
}

struct Options {
    kinds: Vec<Kind>,
    cases: Option<u64>,
    seconds: Option<u64>,
    seed: u64,
    jobs: u64,
    out: PathBuf,
    minimize: bool,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        kinds: vec![Kind::Gc, Kind::Diff],
        cases: env_u64("WASMC_FUZZ_CASES"),
        seconds: env_u64("WASMC_FUZZ_SECONDS"),
        seed: env_u64("WASMC_FUZZ_SEED").unwrap_or_else(|| (now_ms() as u64) % 1_000_000_000),
        jobs: env_u64("WASMC_FUZZ_JOBS").unwrap_or(2).max(1),
        out: std::env::var_os("WASMC_FUZZ_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/fuzz-failures")),
        minimize: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |what: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a number"))
        };
        match a.as_str() {
            "gc" => o.kinds = vec![Kind::Gc],
            "diff" => o.kinds = vec![Kind::Diff],
            "all" => o.kinds = vec![Kind::Gc, Kind::Diff],
            "--cases" => o.cases = Some(val("--cases")?),
            "--seconds" => o.seconds = Some(val("--seconds")?),
            "--seed" => o.seed = val("--seed")?,
            "--jobs" => o.jobs = val("--jobs")?.max(1),
            "--no-minimize" => o.minimize = false,
            "--out" => {
                o.out = PathBuf::from(it.next().ok_or("--out needs a directory")?);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.cases.is_none() && o.seconds.is_none() {
        o.cases = Some(1000);
    }
    Ok(o)
}

#[derive(Default)]
struct Tally {
    passed: u64,
    skipped: u64,
    failures: Vec<(u64, String)>,
}

enum Msg {
    Line(usize, String),
    Eof(usize),
}

/// A worker process and what it is doing.
struct Worker {
    child: Child,
    /// The seed in progress and when it started.
    current: Option<(u64, Instant)>,
    timed_out: bool,
}

/// Runs `kind` on the seeds of `o` in `o.jobs` workers. Worker `w` runs
/// seeds `seed + w`, `seed + w + jobs`, ...; a worker that crashes or hangs
/// is reported with the seed it was running and replaced.
fn campaign(kind: Kind, o: &Options) -> Tally {
    let exe = own_exe();
    let deadline = o.seconds.map_or(0, |s| now_ms() + u128::from(s) * 1000);
    let jobs = o.jobs as usize;
    let (tx, rx) = mpsc::channel::<Msg>();
    // Per worker: next seed and seeds left (None: until the deadline).
    let mut next: Vec<u64> = (0..o.jobs).map(|j| o.seed + j).collect();
    let mut left: Vec<Option<u64>> = (0..o.jobs)
        .map(|j| {
            o.cases
                .map(|n| n / o.jobs + u64::from(j < n % o.jobs))
                .filter(|_| o.seconds.is_none())
        })
        .collect();
    let spawn = |w: usize, first: u64, count: Option<u64>| -> Worker {
        let mut child = Command::new(&exe)
            .args([
                "worker",
                kind.name(),
                &first.to_string(),
                &o.jobs.to_string(),
                &count.unwrap_or(0).to_string(),
                &deadline.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker");
        let stdout = child.stdout.take().expect("piped");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(Msg::Line(w, line));
            }
            let _ = tx.send(Msg::Eof(w));
        });
        Worker {
            child,
            current: None,
            timed_out: false,
        }
    };
    let mut workers: Vec<Option<Worker>> = (0..jobs)
        .map(|w| (left[w] != Some(0)).then(|| spawn(w, next[w], left[w])))
        .collect();
    let mut t = Tally::default();
    let start = Instant::now();
    let mut last_report = Instant::now();
    let timeout = case_timeout();
    while workers.iter().any(Option::is_some) {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Msg::Line(w, line)) => {
                let Some(wk) = workers[w].as_mut() else {
                    continue;
                };
                let (tag, rest) = line.split_at(line.len().min(1));
                let rest = rest.trim_start();
                match tag {
                    "S" => wk.current = rest.parse().ok().map(|s| (s, Instant::now())),
                    "P" | "K" | "F" => {
                        let seed = wk.current.take().map_or(u64::MAX, |c| c.0);
                        match tag {
                            "P" => t.passed += 1,
                            "K" => t.skipped += 1,
                            _ => {
                                eprintln!("FAIL {} seed {seed}: {rest}", kind.name());
                                t.failures.push((seed, rest.to_string()));
                            }
                        }
                        next[w] = seed + o.jobs;
                        if let Some(l) = &mut left[w] {
                            *l -= 1;
                        }
                    }
                    _ => {}
                }
            }
            Ok(Msg::Eof(w)) => {
                let Some(mut wk) = workers[w].take() else {
                    continue;
                };
                let status = wk.child.wait().expect("wait");
                if let Some((seed, _)) = wk.current.take() {
                    let msg = if wk.timed_out {
                        format!("the case hung (no result in {timeout:?})")
                    } else {
                        format!("the worker crashed ({status}) running this case")
                    };
                    eprintln!("FAIL {} seed {seed}: {msg}", kind.name());
                    t.failures.push((seed, msg));
                    next[w] = seed + o.jobs;
                    if let Some(l) = &mut left[w] {
                        *l -= 1;
                    }
                    let more = match left[w] {
                        Some(l) => l > 0,
                        None => now_ms() < deadline,
                    };
                    if more {
                        workers[w] = Some(spawn(w, next[w], left[w]));
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        for wk in workers.iter_mut().flatten() {
            if let Some((_, since)) = wk.current {
                if since.elapsed() > timeout && !wk.timed_out {
                    wk.timed_out = true;
                    let _ = wk.child.kill();
                }
            }
        }
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            eprintln!(
                "{}: {} passed, {} skipped, {} failed after {:.0} s",
                kind.name(),
                t.passed,
                t.skipped,
                t.failures.len(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    t
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => return worker(&args[1..]),
        Some("case") | Some("show") => {
            let kind = args.get(1).and_then(|k| Kind::parse(k));
            let seed = args.get(2).and_then(|s| s.parse().ok());
            let (Some(kind), Some(seed)) = (kind, seed) else {
                eprintln!("usage: wasmc-fuzz case|show gc|diff SEED [+KEPT,...|-REMOVED,...]");
                return ExitCode::from(2);
            };
            let removed = parse_nodes(seed, args.get(3));
            if args[0] == "show" {
                match kind {
                    Kind::Gc => print!("{}", describe(&Program::generate(seed).without(&removed))),
                    Kind::Diff => match differential::module(seed) {
                        Some(w) => print!("{}", diff_text(&w)),
                        None => println!("no module for this seed"),
                    },
                }
                return ExitCode::SUCCESS;
            }
            return match run_case(kind, seed, &removed) {
                Outcome::Pass => ExitCode::SUCCESS,
                Outcome::Skip(r) => {
                    println!("skipped: {r}");
                    ExitCode::SUCCESS
                }
                Outcome::Fail(m) => {
                    eprintln!("{m}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let o = match parse_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wasmc-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for &kind in &o.kinds {
        let start = Instant::now();
        eprintln!(
            "{}: seeds from {} ({}), {} workers",
            kind.name(),
            o.seed,
            match (o.cases, o.seconds) {
                (_, Some(s)) => format!("{s} s"),
                (Some(n), None) => format!("{n} cases"),
                _ => unreachable!(),
            },
            o.jobs
        );
        let t = campaign(kind, &o);
        println!(
            "{}: {} passed, {} failed, {} skipped in {:.1} s (seeds from {})",
            kind.name(),
            t.passed,
            t.failures.len(),
            t.skipped,
            start.elapsed().as_secs_f64(),
            o.seed
        );
        for (seed, msg) in &t.failures {
            failed = true;
            eprintln!("failure: {} seed {seed}: {msg}", kind.name());
            let (removed, msg) = if kind == Kind::Gc && o.minimize {
                let r = minimize(*seed, Duration::from_secs(300));
                let m = replay(kind, *seed, &r).unwrap_or_else(|| msg.clone());
                eprintln!(
                    "  minimized to {} nodes; fails with: {m}",
                    kept(*seed, &r).len()
                );
                (r, m)
            } else {
                (BTreeSet::new(), msg.clone())
            };
            write_reproducer(kind, *seed, &removed, &msg, &o.out);
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// This program, to start workers with: `/proc/self/exe` on Linux, which
/// names the running binary even after a rebuild replaced the file (a long
/// campaign outlives `cargo build`s; the path `current_exe` gives is then
/// gone), else `current_exe`.
fn own_exe() -> std::path::PathBuf {
    let proc_self = std::path::Path::new("/proc/self/exe");
    if proc_self.exists() {
        return proc_self.to_path_buf();
    }
    std::env::current_exe().expect("own path")
}
