//! Compiles every function and trampoline with Cranelift, in parallel.
//!
//! Each unit is compiled independently and the results are collected in a fixed
//! order (defined functions by index, then builtin, entry and host
//! trampolines), so the artifact does not depend on the number of threads.

use crate::convert::{trap_from_ir, wasm_signature};
use crate::func_environ::{FuncEnv, NS_BUILTIN, NS_WASM_FUNC};
use crate::translate::FunctionToCompile;
use crate::{trampolines, CompileError, CompileOptions};
use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{self, UserFuncName};
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::{Context, FinalizedRelocTarget};
use cranelift_wasm::FuncTranslator;
use rayon::prelude::*;
use std::collections::HashMap;
use wasmc_format::builtins::Builtin;
use wasmc_format::{FuncInfo, FuncType, ModuleInfo, TrapCode, VMOffsets};

/// What a relocation in compiled code points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    /// A defined Wasm function (function index space).
    WasmFunc(u32),
    /// A builtin trampoline.
    Builtin(u32),
}

/// A relocation in one compiled function.
#[derive(Clone, Debug)]
pub struct CompiledReloc {
    /// Offset in the function.
    pub offset: u32,
    /// Kind.
    pub kind: Reloc,
    /// Addend.
    pub addend: i64,
    /// Target.
    pub target: RelocTarget,
}

/// Machine code and tables of one compiled unit, offsets relative to its start.
#[derive(Clone, Debug, Default)]
pub struct CompiledFunc {
    /// Machine code.
    pub code: Vec<u8>,
    /// Required alignment.
    pub align: u32,
    /// Calls to resolve.
    pub relocs: Vec<CompiledReloc>,
    /// (offset, trap code).
    pub traps: Vec<(u32, TrapCode)>,
    /// (return address, frame span, SP offsets of live externrefs).
    pub stack_maps: Vec<(u32, u32, Vec<u32>)>,
    /// (code offset, Wasm offset), sorted.
    pub srclocs: Vec<(u32, u32)>,
    /// WebAssembly features the function body uses (empty for trampolines).
    pub features: wasmc_format::WasmFeatures,
}

/// Every compiled unit of a module.
pub struct CompiledModule {
    /// Defined functions in index order.
    pub funcs: Vec<CompiledFunc>,
    /// Trampolines of the builtins the functions call, in builtin order.
    pub builtins: Vec<(Builtin, CompiledFunc)>,
    /// For each type index, its index in `signatures`.
    pub type_to_sig: Vec<usize>,
    /// Entry trampolines, one per signature.
    pub entry: Vec<CompiledFunc>,
    /// Host trampolines, one per signature.
    pub host: Vec<CompiledFunc>,
}

enum Unit<'a, 'data> {
    Func(FunctionToCompile<'data>),
    Builtin(Builtin),
    Entry(&'a FuncType),
    Host(&'a FuncType),
}

fn codegen_err(what: String, e: impl std::fmt::Display) -> CompileError {
    CompileError::Codegen {
        what,
        message: e.to_string(),
    }
}

fn finish(
    isa: &dyn TargetIsa,
    func: ir::Function,
    what: impl Fn() -> String,
) -> Result<CompiledFunc, CompileError> {
    let names = func.params.user_named_funcs().clone();
    let mut ctx = Context::for_function(func);
    let mut ctrl = ControlPlane::default();
    let code = ctx
        .compile(isa, &mut ctrl)
        .map_err(|e| codegen_err(what(), format!("{:?}", e.inner)))?;
    let buffer = &code.buffer;
    let mut out = CompiledFunc {
        code: buffer.data().to_vec(),
        align: buffer.alignment.max(isa.function_alignment().preferred),
        ..Default::default()
    };
    for r in buffer.relocs() {
        let target = match &r.target {
            FinalizedRelocTarget::ExternalName(ir::ExternalName::User(n)) => {
                let name = &names[*n];
                match name.namespace {
                    NS_WASM_FUNC => RelocTarget::WasmFunc(name.index),
                    NS_BUILTIN => RelocTarget::Builtin(name.index),
                    ns => {
                        return Err(codegen_err(
                            what(),
                            format!("relocation to unknown namespace {ns}"),
                        ))
                    }
                }
            }
            other => {
                return Err(codegen_err(
                    what(),
                    format!(
                        "code needs a runtime relocation ({:?} to {other:?}); \
                         this usually means a CPU feature is missing (e.g. SSE4.1)",
                        r.kind
                    ),
                ))
            }
        };
        out.relocs.push(CompiledReloc {
            offset: r.offset,
            kind: r.kind,
            addend: r.addend,
            target,
        });
    }
    for t in buffer.traps() {
        let code = trap_from_ir(t.code)
            .ok_or_else(|| codegen_err(what(), format!("unknown trap code {:?}", t.code)))?;
        out.traps.push((t.offset, code));
    }
    for (ret_addr, span, map) in buffer.user_stack_maps() {
        let slots = map.entries().map(|(_, off)| off).collect();
        out.stack_maps.push((*ret_addr, *span, slots));
    }
    for s in buffer.get_srclocs_sorted() {
        if !s.loc.is_default() {
            out.srclocs.push((s.start, s.loc.bits()));
        }
    }
    Ok(out)
}

fn compile_wasm(
    isa: &dyn TargetIsa,
    module: &ModuleInfo,
    funcs: &[FuncInfo],
    opts: &CompileOptions,
    f: FunctionToCompile<'_>,
) -> Result<CompiledFunc, CompileError> {
    let index = f.index;
    let what = || match &funcs[index as usize].name {
        Some(n) => format!("function {index} `{n}`"),
        None => format!("function {index}"),
    };
    let features = crate::features::scan_body(&f.body, opts.features)?;
    let ptr = isa.pointer_type();
    let ty = &module.types[funcs[index as usize].type_index as usize];
    let sig = wasm_signature(ty, ptr);
    let mut func =
        ir::Function::with_name_signature(UserFuncName::user(NS_WASM_FUNC, f.index), sig);

    // Prologue stack check: vmctx -> runtime limits -> stack limit.
    let o = VMOffsets::for_module(isa.pointer_bytes(), module);
    let vmctx = func.create_global_value(ir::GlobalValueData::VMContext);
    let flags = ir::MemFlags::trusted().with_readonly();
    let limits = func.create_global_value(ir::GlobalValueData::Load {
        base: vmctx,
        offset: (o.vmctx_runtime_limits() as i32).into(),
        global_type: ptr,
        flags,
    });
    let limit = func.create_global_value(ir::GlobalValueData::Load {
        base: limits,
        offset: (o.limits_stack_limit() as i32).into(),
        global_type: ptr,
        flags,
    });
    func.stack_limit = Some(limit);

    let mut env = FuncEnv::new(module, funcs, isa, opts.memory, opts.interruption, f.index);
    let mut validator = f.validator.into_validator(Default::default());
    FuncTranslator::new()
        .translate_body(&mut validator, f.body, &mut func, &mut env)
        .map_err(|e| match e {
            cranelift_wasm::WasmError::InvalidWebAssembly { message, offset } => {
                CompileError::Invalid { offset, message }
            }
            cranelift_wasm::WasmError::Unsupported(m) => CompileError::Unsupported(m),
            other => codegen_err(what(), other),
        })?;
    let refs = env.take_refs(&func);
    crate::stack_maps::insert(&mut func, &refs);
    if !isa.has_native_fma() {
        crate::relaxed::lower_fma(&mut func, |func, b| env.builtin(func, b));
    }
    let mut out = finish(isa, func, what)?;
    out.features = features;
    Ok(out)
}

/// Compiles every unit of `t`.
pub fn compile_module(
    isa: &dyn TargetIsa,
    module: &ModuleInfo,
    funcs: &[FuncInfo],
    functions: Vec<FunctionToCompile<'_>>,
    opts: &CompileOptions,
) -> Result<CompiledModule, CompileError> {
    let o = VMOffsets::for_module(isa.pointer_bytes(), module);

    let mut signatures: Vec<FuncType> = Vec::new();
    let mut seen: HashMap<&FuncType, usize> = HashMap::new();
    let type_to_sig = module
        .types
        .iter()
        .map(|ty| {
            *seen.entry(ty).or_insert_with(|| {
                signatures.push(ty.clone());
                signatures.len() - 1
            })
        })
        .collect();

    // More threads than cores gains nothing for this CPU-bound work, and a
    // huge `-j` would try to spawn that many threads (and their stacks):
    // `-j 100000` panicked in rayon's workers and hung. The output does not
    // depend on the count, so capping it changes nothing else.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = match opts.threads.map(|t| t.min(cores)) {
        Some(1) => None,
        threads => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads.unwrap_or(0))
                .build()
                .map_err(|e| codegen_err("thread pool".into(), e))?,
        ),
    };
    let run = |u: Unit| -> Result<CompiledFunc, CompileError> {
        match u {
            Unit::Func(f) => compile_wasm(isa, module, funcs, opts, f),
            Unit::Builtin(b) => finish(isa, trampolines::builtin_trampoline(isa, &o, b), || {
                format!("builtin trampoline {}", b.name())
            }),
            Unit::Entry(ty) => finish(isa, trampolines::entry_trampoline(isa, &o, ty), || {
                format!("entry trampoline for {ty}")
            }),
            Unit::Host(ty) => finish(isa, trampolines::host_trampoline(isa, &o, ty), || {
                format!("host trampoline for {ty}")
            }),
        }
    };
    // Results come back in the order of `units` whatever the thread count.
    let compile_all = |units: Vec<Unit>| -> Result<Vec<CompiledFunc>, CompileError> {
        match &pool {
            None => units.into_iter().map(run).collect(),
            Some(pool) => pool.install(|| units.into_par_iter().map(run).collect()),
        }
    };

    // Functions first, so that only the builtins they call get trampolines.
    let funcs = compile_all(functions.into_iter().map(Unit::Func).collect())?;
    let mut used = [false; Builtin::COUNT];
    for r in funcs.iter().flat_map(|f| &f.relocs) {
        if let RelocTarget::Builtin(b) = r.target {
            used[b as usize] = true;
        }
    }
    let used: Vec<Builtin> = Builtin::ALL
        .iter()
        .copied()
        .filter(|b| used[b.index() as usize])
        .collect();
    let mut units: Vec<Unit> = used.iter().map(|b| Unit::Builtin(*b)).collect();
    units.extend(signatures.iter().map(Unit::Entry));
    units.extend(signatures.iter().map(Unit::Host));
    let mut results = compile_all(units)?.into_iter();
    let ns = signatures.len();
    let builtins = used
        .iter()
        .copied()
        .zip(results.by_ref().take(used.len()))
        .collect();
    let entry = results.by_ref().take(ns).collect();
    let host = results.collect();
    Ok(CompiledModule {
        funcs,
        builtins,
        type_to_sig,
        entry,
        host,
    })
}
