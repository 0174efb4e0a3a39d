//! The `.wast` script runner: every module goes the real production path,
//! compile -> artifact bytes (or file) -> `wasmc_loader::Module` -> instance.
//!
//! Used by `wasmc wast` and by the spec-testsuite test. Each command of a
//! script is one check; a failing check is recorded with its line, what was
//! expected and what happened, and the script goes on.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use wasmc_compiler::{compile, CompileError, CompileOptions, WasmFeatures};
use wasmc_loader::format::{FuncType, GlobalType, MemoryType, RefType, TableType, ValType};
use wasmc_loader::{
    Engine, Error, Extern, ExternRef, Func, Global, Instance, Linker, Memory, Module, Store, Table,
    Val,
};
use wast::core::{HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::Id;
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};

/// How to run scripts.
#[derive(Clone, Debug, Default)]
pub struct WastOptions {
    /// Compiler options for every module.
    pub compile: CompileOptions,
    /// When set, artifacts are written to this directory and loaded with
    /// `Module::from_file`; otherwise with `Module::from_bytes`.
    pub artifact_dir: Option<PathBuf>,
}

/// A check that failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// 1-based line of the command.
    pub line: usize,
    /// The command (`assert_return`, `module`, ...).
    pub command: &'static str,
    /// What was expected.
    pub expected: String,
    /// What happened.
    pub actual: String,
}

/// The result of one script.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Script path.
    pub file: PathBuf,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Checks that failed.
    pub fn failed(&self) -> usize {
        self.failures.len()
    }

    /// One line per failure: `file:line: command: expected X, got Y`.
    pub fn failure_lines(&self) -> String {
        let mut out = String::new();
        for f in &self.failures {
            let _ = writeln!(
                out,
                "{}:{}: {}: expected {}, got {}",
                self.file.display(),
                f.line,
                f.command,
                f.expected,
                f.actual
            );
        }
        out
    }
}

/// Runs the script at `path`. `Err` only if it cannot be read or parsed.
pub fn run_file(path: &Path, opts: &WastOptions) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut report = run_script(&text, opts).map_err(|e| format!("{}: {e}", path.display()))?;
    report.file = path.to_path_buf();
    Ok(report)
}

/// Runs a script given as text.
pub fn run_script(text: &str, opts: &WastOptions) -> Result<Report, String> {
    let mut lexer = Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = ParseBuffer::new_with_lexer(lexer).map_err(|e| e.to_string())?;
    let wast: Wast = parser::parse(&buf).map_err(|e| e.to_string())?;
    let mut runner = Runner::new(opts.clone());
    let mut report = Report::default();
    for directive in wast.directives {
        let line = directive.span().linecol_in(text).0 + 1;
        let command = directive_name(&directive);
        match runner.directive(directive) {
            Ok(()) => report.passed += 1,
            Err(Mismatch { expected, actual }) => report.failures.push(Failure {
                line,
                command,
                expected,
                actual,
            }),
        }
    }
    Ok(report)
}

fn directive_name(d: &WastDirective<'_>) -> &'static str {
    match d {
        WastDirective::Module(_) => "module",
        WastDirective::ModuleDefinition(_) => "module definition",
        WastDirective::ModuleInstance { .. } => "module instance",
        WastDirective::AssertMalformed { .. } => "assert_malformed",
        WastDirective::AssertInvalid { .. } => "assert_invalid",
        WastDirective::Register { .. } => "register",
        WastDirective::Invoke(_) => "invoke",
        WastDirective::AssertTrap { .. } => "assert_trap",
        WastDirective::AssertReturn { .. } => "assert_return",
        WastDirective::AssertExhaustion { .. } => "assert_exhaustion",
        WastDirective::AssertUnlinkable { .. } => "assert_unlinkable",
        WastDirective::AssertException { .. } => "assert_exception",
        WastDirective::Thread(_) => "thread",
        WastDirective::Wait { .. } => "wait",
    }
}

struct Mismatch {
    expected: String,
    actual: String,
}

fn mismatch(expected: impl Into<String>, actual: impl Into<String>) -> Mismatch {
    Mismatch {
        expected: expected.into(),
        actual: actual.into(),
    }
}

type Check = Result<(), Mismatch>;

struct Runner {
    opts: WastOptions,
    engine: Engine,
    store: Store<()>,
    linker: Linker<()>,
    current: Option<Instance>,
    named: HashMap<String, Instance>,
    definitions: HashMap<String, Module>,
    artifact_counter: usize,
}

impl Runner {
    fn new(opts: WastOptions) -> Runner {
        let engine = Engine::default();
        let mut store = Store::new(&engine, ());
        let mut linker = Linker::new(&engine);
        linker.allow_shadowing(true);
        define_spectest(&mut store, &mut linker);
        Runner {
            opts,
            engine,
            store,
            linker,
            current: None,
            named: HashMap::new(),
            definitions: HashMap::new(),
            artifact_counter: 0,
        }
    }

    /// Compiles and loads a module; errors are compile or load errors.
    fn load(&mut self, wasm: &[u8]) -> Result<Module, String> {
        let artifact = compile(wasm, &self.opts.compile).map_err(|e| e.to_string())?;
        match &self.opts.artifact_dir {
            Some(dir) => {
                self.artifact_counter += 1;
                let path = dir.join(format!("module{}.o", self.artifact_counter));
                std::fs::write(&path, &artifact).map_err(|e| e.to_string())?;
                Module::from_file(&self.engine, &path).map_err(|e| e.to_string())
            }
            None => Module::from_bytes(&self.engine, &artifact).map_err(|e| e.to_string()),
        }
    }

    fn instantiate(&mut self, module: &Module) -> Result<Instance, Error> {
        self.linker.instantiate(&mut self.store, module)
    }

    fn define_module(&mut self, mut wat: QuoteWat<'_>) -> Check {
        let id = quote_id(&wat);
        let wasm = wat
            .encode()
            .map_err(|e| mismatch("a module", format!("text error: {e}")))?;
        let module = self
            .load(&wasm)
            .map_err(|e| mismatch("module to compile and load", e))?;
        let instance = self
            .instantiate(&module)
            .map_err(|e| mismatch("module to instantiate", e.to_string()))?;
        if let Some(id) = id {
            self.named.insert(id.name().to_string(), instance);
        }
        self.current = Some(instance);
        Ok(())
    }

    fn instance(&self, id: Option<Id<'_>>) -> Result<Instance, Mismatch> {
        match id {
            Some(id) => self
                .named
                .get(id.name())
                .copied()
                .ok_or_else(|| mismatch(format!("module ${}", id.name()), "no such module")),
            None => self
                .current
                .ok_or_else(|| mismatch("a current module", "none")),
        }
    }

    fn invoke(&mut self, invoke: &WastInvoke<'_>) -> Result<Result<Vec<Val>, Error>, Mismatch> {
        let instance = self.instance(invoke.module)?;
        let func = instance
            .get_func(&mut self.store, invoke.name)
            .ok_or_else(|| mismatch(format!("export `{}`", invoke.name), "no such function"))?;
        let args = invoke
            .args
            .iter()
            .map(arg_val)
            .collect::<Result<Vec<_>, _>>()?;
        let ty = func.ty(&self.store);
        let mut results = vec![Val::I32(0); ty.results.len()];
        Ok(func
            .call(&mut self.store, &args, &mut results)
            .map(|()| results))
    }

    fn execute(&mut self, exec: WastExecute<'_>) -> Result<Result<Vec<Val>, Error>, Mismatch> {
        match exec {
            WastExecute::Invoke(i) => self.invoke(&i),
            WastExecute::Get { module, global, .. } => {
                let instance = self.instance(module)?;
                let g = instance
                    .get_global(&mut self.store, global)
                    .ok_or_else(|| mismatch(format!("global `{global}`"), "no such global"))?;
                Ok(Ok(vec![g.get(&mut self.store)]))
            }
            WastExecute::Wat(mut wat) => {
                let wasm = wat
                    .encode()
                    .map_err(|e| mismatch("a module", format!("text error: {e}")))?;
                let module = self
                    .load(&wasm)
                    .map_err(|e| mismatch("module to compile and load", e))?;
                Ok(self.instantiate(&module).map(|_| Vec::new()))
            }
        }
    }

    fn directive(&mut self, d: WastDirective<'_>) -> Check {
        match d {
            WastDirective::Module(wat) => self.define_module(wat),
            WastDirective::ModuleDefinition(mut wat) => {
                let id = quote_id(&wat);
                let wasm = wat
                    .encode()
                    .map_err(|e| mismatch("a module", e.to_string()))?;
                let module = self
                    .load(&wasm)
                    .map_err(|e| mismatch("module to compile and load", e))?;
                if let Some(id) = id {
                    self.definitions.insert(id.name().to_string(), module);
                }
                Ok(())
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let def = module
                    .and_then(|m| self.definitions.get(m.name()).cloned())
                    .ok_or_else(|| mismatch("a module definition", "none"))?;
                let inst = self
                    .instantiate(&def)
                    .map_err(|e| mismatch("module to instantiate", e.to_string()))?;
                if let Some(id) = instance {
                    self.named.insert(id.name().to_string(), inst);
                }
                self.current = Some(inst);
                Ok(())
            }
            WastDirective::Register { name, module, .. } => {
                let instance = self.instance(module)?;
                self.linker
                    .instance(&mut self.store, name, instance)
                    .map(|_| ())
                    .map_err(|e| mismatch("register to succeed", e.to_string()))
            }
            WastDirective::Invoke(i) => match self.invoke(&i)? {
                Ok(_) => Ok(()),
                Err(e) => Err(mismatch("invoke to succeed", e.to_string())),
            },
            WastDirective::AssertReturn { exec, results, .. } => {
                let got = self.execute(exec)?.map_err(|e| {
                    mismatch(
                        format!("results {}", describe_rets(&results)),
                        e.to_string(),
                    )
                })?;
                if got.len() != results.len() {
                    return Err(mismatch(describe_rets(&results), describe_vals(&got)));
                }
                for (v, r) in got.iter().zip(&results) {
                    let WastRet::Core(r) = r else {
                        return Err(mismatch("a core value", "a component value"));
                    };
                    if !self.matches(v, r) {
                        return Err(mismatch(describe_rets(&results), describe_vals(&got)));
                    }
                }
                Ok(())
            }
            WastDirective::AssertTrap { exec, message, .. } => match self.execute(exec)? {
                Ok(v) => Err(mismatch(format!("trap `{message}`"), describe_vals(&v))),
                Err(e) => trap_matches(&e, message),
            },
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call)? {
                Ok(v) => Err(mismatch(format!("trap `{message}`"), describe_vals(&v))),
                Err(e) => trap_matches(&e, message),
            },
            WastDirective::AssertInvalid {
                module, message, ..
            }
            | WastDirective::AssertMalformed {
                module, message, ..
            } => {
                let mut module = module;
                if let QuoteWat::QuoteComponent(..) = module {
                    return Ok(());
                }
                let Ok(wasm) = module.encode() else {
                    return Ok(()); // rejected by the text parser
                };
                match compile(&wasm, &self.opts.compile) {
                    Ok(_) => Err(mismatch(
                        format!("module rejected with `{message}`"),
                        "it compiled",
                    )),
                    // Refusing a proposal wasmc does not implement says
                    // nothing about whether the module is invalid. (A
                    // feature the options turned off does: the module is
                    // invalid without it.)
                    Err(CompileError::NotSupported { proposal, .. })
                        if WasmFeatures::from_name(&proposal)
                            .is_some_and(|f| !self.opts.compile.features.contains(f)) =>
                    {
                        // A feature this run turned off: the module is
                        // invalid without it.
                        Ok(())
                    }
                    Err(e @ (CompileError::NotSupported { .. } | CompileError::Unsupported(_))) => {
                        Err(mismatch(
                            format!("module rejected with `{message}`"),
                            e.to_string(),
                        ))
                    }
                    Err(_) => Ok(()),
                }
            }
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => {
                let mut wat = module;
                let wasm = wat
                    .encode()
                    .map_err(|e| mismatch("a module", e.to_string()))?;
                let module = self
                    .load(&wasm)
                    .map_err(|e| mismatch("module to compile and load", e))?;
                match self.instantiate(&module) {
                    Ok(_) => Err(mismatch(format!("link error `{message}`"), "instantiated")),
                    Err(Error::Link(_)) => Ok(()),
                    Err(e) => Err(mismatch(format!("link error `{message}`"), e.to_string())),
                }
            }
            WastDirective::AssertException { .. }
            | WastDirective::Thread(_)
            | WastDirective::Wait { .. } => Err(mismatch(
                "a WebAssembly 2.0 command",
                "a command of an unsupported proposal",
            )),
        }
    }

    fn matches(&self, v: &Val, r: &WastRetCore<'_>) -> bool {
        match (v, r) {
            (Val::I32(a), WastRetCore::I32(b)) => a == b,
            (Val::I64(a), WastRetCore::I64(b)) => a == b,
            (Val::F32(a), WastRetCore::F32(p)) => f32_matches(*a, p),
            (Val::F64(a), WastRetCore::F64(p)) => f64_matches(*a, p),
            (Val::V128(a), WastRetCore::V128(p)) => v128_matches(*a, p),
            (Val::FuncRef(f), WastRetCore::RefNull(t)) => {
                f.is_none()
                    && matches!(
                        t,
                        None | Some(HeapType::Abstract {
                            ty: wast::core::AbstractHeapType::Func,
                            ..
                        })
                    )
            }
            (Val::ExternRef(e), WastRetCore::RefNull(t)) => {
                e.is_none()
                    && matches!(
                        t,
                        None | Some(HeapType::Abstract {
                            ty: wast::core::AbstractHeapType::Extern,
                            ..
                        })
                    )
            }
            (Val::ExternRef(Some(e)), WastRetCore::RefExtern(n)) => match n {
                None => true,
                Some(n) => e.downcast_ref::<u32>() == Some(n),
            },
            // The 2.0 testsuite only checks that a function reference is non-null.
            (Val::FuncRef(Some(_)), WastRetCore::RefFunc(_)) => true,
            (v, WastRetCore::Either(options)) => options.iter().any(|o| self.matches(v, o)),
            _ => false,
        }
    }
}

fn quote_id<'a>(wat: &QuoteWat<'a>) -> Option<Id<'a>> {
    match wat {
        QuoteWat::Wat(Wat::Module(m)) => m.id,
        _ => None,
    }
}

/// Does the error `e` report the trap `message`? Wasm traps print the spec's
/// wording; instantiation errors caused by a trap include it.
fn trap_matches(e: &Error, message: &str) -> Check {
    // A trap matches by kind: the reference interpreter appends details (an
    // element index) that the trap kind does not carry.
    if let Some(trap) = e.as_trap() {
        if message.starts_with(trap.code.message()) {
            return Ok(());
        }
    }
    let text = e.to_string();
    if text.contains(message) {
        return Ok(());
    }
    Err(mismatch(format!("trap `{message}`"), text))
}

fn arg_val(a: &WastArg<'_>) -> Result<Val, Mismatch> {
    let WastArg::Core(a) = a else {
        return Err(mismatch("a core value", "a component value"));
    };
    Ok(match a {
        WastArgCore::I32(v) => Val::I32(*v),
        WastArgCore::I64(v) => Val::I64(*v),
        WastArgCore::F32(v) => Val::F32(v.bits),
        WastArgCore::F64(v) => Val::F64(v.bits),
        WastArgCore::V128(v) => Val::V128(u128::from_le_bytes(v.to_le_bytes())),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: wast::core::AbstractHeapType::Func,
            ..
        }) => Val::FuncRef(None),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: wast::core::AbstractHeapType::Extern,
            ..
        }) => Val::ExternRef(None),
        WastArgCore::RefExtern(n) => Val::ExternRef(Some(ExternRef::new(*n))),
        other => return Err(mismatch("a WebAssembly 2.0 argument", format!("{other:?}"))),
    })
}

fn f32_matches(bits: u32, p: &NanPattern<wast::token::F32>) -> bool {
    let is_nan = (bits & 0x7f80_0000) == 0x7f80_0000 && (bits & 0x007f_ffff) != 0;
    match p {
        NanPattern::CanonicalNan => (bits & 0x7fff_ffff) == 0x7fc0_0000,
        NanPattern::ArithmeticNan => is_nan && (bits & 0x0040_0000) != 0,
        NanPattern::Value(v) => v.bits == bits,
    }
}

fn f64_matches(bits: u64, p: &NanPattern<wast::token::F64>) -> bool {
    let exp = 0x7ff0_0000_0000_0000u64;
    let is_nan = (bits & exp) == exp && (bits & 0x000f_ffff_ffff_ffff) != 0;
    match p {
        NanPattern::CanonicalNan => (bits & 0x7fff_ffff_ffff_ffff) == 0x7ff8_0000_0000_0000,
        NanPattern::ArithmeticNan => is_nan && (bits & 0x0008_0000_0000_0000) != 0,
        NanPattern::Value(v) => v.bits == bits,
    }
}

fn v128_matches(v: u128, p: &V128Pattern) -> bool {
    let b = v.to_le_bytes();
    match p {
        V128Pattern::I8x16(l) => l.iter().enumerate().all(|(i, x)| b[i] as i8 == *x),
        V128Pattern::I16x8(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| i16::from_le_bytes([b[2 * i], b[2 * i + 1]]) == *x),
        V128Pattern::I32x4(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| i32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) == *x),
        V128Pattern::I64x2(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| i64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()) == *x),
        V128Pattern::F32x4(l) => l.iter().enumerate().all(|(i, p)| {
            f32_matches(
                u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()),
                p,
            )
        }),
        V128Pattern::F64x2(l) => l.iter().enumerate().all(|(i, p)| {
            f64_matches(
                u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()),
                p,
            )
        }),
    }
}

fn describe_vals(vals: &[Val]) -> String {
    let parts: Vec<String> = vals
        .iter()
        .map(|v| match v {
            Val::I32(x) => format!("i32:{x}"),
            Val::I64(x) => format!("i64:{x}"),
            Val::F32(x) => format!("f32:{} ({x:#x})", f32::from_bits(*x)),
            Val::F64(x) => format!("f64:{} ({x:#x})", f64::from_bits(*x)),
            Val::V128(x) => format!("v128:{x:#034x}"),
            Val::FuncRef(None) => "ref.null func".into(),
            Val::FuncRef(Some(_)) => "ref.func".into(),
            Val::ExternRef(None) => "ref.null extern".into(),
            Val::ExternRef(Some(e)) => match e.downcast_ref::<u32>() {
                Some(n) => format!("ref.extern {n}"),
                None => "ref.extern (host value)".into(),
            },
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn describe_rets(rets: &[WastRet<'_>]) -> String {
    let parts: Vec<String> = rets
        .iter()
        .map(|r| match r {
            WastRet::Core(c) => describe_ret(c),
            WastRet::Component(_) => "component value".into(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn describe_ret(r: &WastRetCore<'_>) -> String {
    fn pattern<T>(p: &NanPattern<T>, value: impl Fn(&T) -> String) -> String {
        match p {
            NanPattern::CanonicalNan => "nan:canonical".into(),
            NanPattern::ArithmeticNan => "nan:arithmetic".into(),
            NanPattern::Value(v) => value(v),
        }
    }
    match r {
        WastRetCore::I32(x) => format!("i32:{x}"),
        WastRetCore::I64(x) => format!("i64:{x}"),
        WastRetCore::F32(p) => format!(
            "f32:{}",
            pattern(p, |v| format!("{} ({:#x})", f32::from_bits(v.bits), v.bits))
        ),
        WastRetCore::F64(p) => format!(
            "f64:{}",
            pattern(p, |v| format!("{} ({:#x})", f64::from_bits(v.bits), v.bits))
        ),
        WastRetCore::V128(p) => format!("v128 {p:?}"),
        WastRetCore::RefNull(_) => "ref.null".into(),
        WastRetCore::RefExtern(Some(n)) => format!("ref.extern {n}"),
        WastRetCore::RefExtern(None) => "ref.extern".into(),
        WastRetCore::RefFunc(_) => "ref.func".into(),
        WastRetCore::Either(v) => v.iter().map(describe_ret).collect::<Vec<_>>().join(" or "),
        other => format!("{other:?}"),
    }
}

/// Defines the standard `spectest` host module.
fn define_spectest(store: &mut Store<()>, linker: &mut Linker<()>) {
    let print = |params: Vec<ValType>| FuncType {
        params,
        results: vec![],
    };
    for (name, params) in [
        ("print", vec![]),
        ("print_i32", vec![ValType::I32]),
        ("print_i64", vec![ValType::I64]),
        ("print_f32", vec![ValType::F32]),
        ("print_f64", vec![ValType::F64]),
        ("print_i32_f32", vec![ValType::I32, ValType::F32]),
        ("print_f64_f64", vec![ValType::F64, ValType::F64]),
    ] {
        let f = Func::new(&mut *store, print(params), |_, _, _| Ok(()));
        linker
            .define(&*store, "spectest", name, Extern::Func(f))
            .expect("spectest defines once");
    }
    let global = |store: &mut Store<()>, ty: ValType, v: Val| {
        Global::new(store, GlobalType { ty, mutable: false }, v).expect("spectest global")
    };
    let globals = [
        ("global_i32", global(store, ValType::I32, Val::I32(666))),
        ("global_i64", global(store, ValType::I64, Val::I64(666))),
        (
            "global_f32",
            global(store, ValType::F32, Val::F32(666.6f32.to_bits())),
        ),
        (
            "global_f64",
            global(store, ValType::F64, Val::F64(666.6f64.to_bits())),
        ),
    ];
    for (name, g) in globals {
        linker
            .define(&*store, "spectest", name, Extern::Global(g))
            .expect("spectest defines once");
    }
    // The 3.0 spectest module also has a 64-bit table.
    for (name, table64) in [("table", false), ("table64", true)] {
        let ty = TableType {
            elem: RefType::FuncRef,
            min: 10,
            max: Some(20),
            table64,
        };
        let table = Table::new(&mut *store, ty, Val::FuncRef(None)).expect("spectest table");
        linker
            .define(&*store, "spectest", name, Extern::Table(table))
            .expect("spectest defines once");
    }
    let memory = Memory::new(
        &mut *store,
        MemoryType {
            min: 1,
            max: Some(2),
            memory64: false,
            shared: false,
        },
    )
    .expect("spectest memory");
    linker
        .define(&*store, "spectest", "memory", Extern::Memory(memory))
        .expect("spectest defines once");
}
