//! The drop-counter harness of the externref GC tests
//! (`tests/tests/loader/externref_gc.rs`, `tests/tests/tail_calls.rs`):
//! host values that log their id when dropped, host functions that make
//! and check them from inside Wasm, and an instance of a test module with
//! those imports.
//!
//! References are made *inside* Wasm calls by `host.make`, so that the
//! activations table is their only counted holder: if a stack map missed
//! one, the collection inside the next host call would free it and the
//! following `host.check` would see it in the drop log (or a corrupted
//! value).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wasmc_compiler::{compile, CompileOptions, OptLevel};
use wasmc_loader::format::ValType;
use wasmc_loader::{
    Caller, Engine, Error, ExternRef, FuncType, Instance, Linker, Module, Store, Val,
};

/// A host value that logs its id when dropped.
pub struct Tracked {
    /// Its id.
    pub id: i32,
    log: Arc<Log>,
}

/// What the tracked values and the host functions saw.
#[derive(Default)]
pub struct Log {
    /// Ids of the dropped values, in drop order.
    pub dropped: Mutex<Vec<i32>>,
    /// Values made and not dropped yet.
    pub live: AtomicUsize,
    /// What the host functions found wrong.
    pub errors: Mutex<Vec<String>>,
    /// Collections run by `host.gc` and `host.gc_check`.
    pub gcs: AtomicUsize,
}

impl Log {
    /// The dropped ids so far.
    pub fn dropped(&self) -> Vec<i32> {
        self.dropped.lock().unwrap().clone()
    }

    /// Whether `id` was dropped.
    pub fn is_dropped(&self, id: i32) -> bool {
        self.dropped.lock().unwrap().contains(&id)
    }

    /// Records something wrong.
    pub fn error(&self, e: String) {
        self.errors.lock().unwrap().push(e);
    }

    /// Collections run by the host functions.
    pub fn gcs(&self) -> usize {
        self.gcs.load(Ordering::SeqCst)
    }

    /// Runs a collection from a host function and checks that the walk
    /// found every frame.
    fn gc(&self, c: &mut Caller<'_, ()>) {
        c.gc();
        self.gcs.fetch_add(1, Ordering::SeqCst);
        if c.gc_stats().failed_walks != 0 {
            self.error("a stack walk failed".into());
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.live.fetch_sub(1, Ordering::SeqCst);
        self.log.dropped.lock().unwrap().push(self.id);
    }
}

/// A new tracked reference with `id`.
pub fn tracked(id: i32, log: &Arc<Log>) -> ExternRef {
    log.live.fetch_add(1, Ordering::SeqCst);
    ExternRef::new(Tracked {
        id,
        log: log.clone(),
    })
}

/// The id of a tracked reference.
pub fn id_of(r: &ExternRef) -> Option<i32> {
    r.downcast_ref::<Tracked>().map(|t| t.id)
}

/// The id of a tracked reference in `v` (an `externref` value).
pub fn returned_id(v: &Val) -> Option<i32> {
    v.externref().flatten().and_then(id_of)
}

/// A linker with the host functions `host.make(id) -> externref`,
/// `host.check(ref, id)` (the ref must be the live value `id`), `host.gc()`
/// (collects; the walk must succeed), `host.is_dropped(id) -> i32`, and
/// `host.gc_check(ref, id) -> ref` (collects, then checks `id` is live and
/// returns the ref: a tail call straight into it leaves no Wasm frame).
pub fn linker(engine: &Engine, log: &Arc<Log>) -> Linker<()> {
    let mut l = Linker::new(engine);
    let ft = |params: Vec<ValType>, results: Vec<ValType>| FuncType { params, results };
    let lg = log.clone();
    l.func_new(
        "host",
        "make",
        ft(vec![ValType::I32], vec![ValType::ExternRef]),
        move |_, a, r| {
            r[0] = Val::ExternRef(Some(tracked(a[0].i32().unwrap(), &lg)));
            Ok(())
        },
    )
    .unwrap();
    let lg = log.clone();
    l.func_new(
        "host",
        "check",
        ft(vec![ValType::ExternRef, ValType::I32], vec![]),
        move |_, a, _| {
            let want = a[1].i32().unwrap();
            match a[0].externref().unwrap() {
                None => lg.error(format!("check({want}): got null")),
                Some(r) => {
                    if id_of(r) != Some(want) {
                        lg.error(format!("check({want}): got id {:?}", id_of(r)));
                    }
                    if lg.is_dropped(want) {
                        lg.error(format!("check({want}): it was freed while live"));
                    }
                }
            }
            Ok(())
        },
    )
    .unwrap();
    let lg = log.clone();
    l.func_new(
        "host",
        "gc",
        ft(vec![], vec![]),
        move |mut c: Caller<'_, ()>, _, _| {
            lg.gc(&mut c);
            Ok(())
        },
    )
    .unwrap();
    let lg = log.clone();
    l.func_new(
        "host",
        "is_dropped",
        ft(vec![ValType::I32], vec![ValType::I32]),
        move |_, a, r| {
            r[0] = Val::I32(lg.is_dropped(a[0].i32().unwrap()) as i32);
            Ok(())
        },
    )
    .unwrap();
    let lg = log.clone();
    l.func_new(
        "host",
        "gc_check",
        ft(
            vec![ValType::ExternRef, ValType::I32],
            vec![ValType::ExternRef],
        ),
        move |mut c: Caller<'_, ()>, a, r| {
            lg.gc(&mut c);
            let want = a[1].i32().unwrap();
            if lg.is_dropped(want) {
                lg.error(format!("gc_check({want}): it was freed while live"));
            }
            r[0] = a[0].clone();
            Ok(())
        },
    )
    .unwrap();
    l
}

/// An instance of a test module linked with [`linker`], in its own store.
pub struct Env {
    /// The store.
    pub store: Store<()>,
    /// The instance.
    pub instance: Instance,
    /// What its host functions and tracked values saw.
    pub log: Arc<Log>,
}

impl Env {
    /// `wat` compiled at `opt` and instantiated in a new store of
    /// `engine`, collecting at every builtin and host call when `stress`.
    pub fn new(engine: &Engine, wat: &str, opt: OptLevel, stress: bool) -> Env {
        let log = Arc::new(Log::default());
        let opts = CompileOptions {
            opt_level: opt,
            ..Default::default()
        };
        let module = Module::from_bytes(engine, &compile(wat.as_bytes(), &opts).unwrap()).unwrap();
        let mut store = Store::new(engine, ());
        store.set_gc_stress(stress);
        let instance = linker(engine, &log)
            .instantiate(&mut store, &module)
            .unwrap();
        Env {
            store,
            instance,
            log,
        }
    }

    /// Calls export `name`.
    pub fn call(&mut self, name: &str, args: &[Val]) -> Result<Vec<Val>, Error> {
        let f = self.instance.get_func(&mut self.store, name).unwrap();
        let n = f.ty(&self.store).results.len();
        let mut results = vec![Val::I32(0); n];
        f.call(&mut self.store, args, &mut results)
            .map(|()| results)
    }

    /// Calls export `name`, which must not fail.
    pub fn ok(&mut self, name: &str, args: &[Val]) -> Vec<Val> {
        self.call(name, args)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Asserts that no host function found anything wrong and no stack walk
    /// failed.
    pub fn assert_clean(&self, what: &str) {
        let errors = self.log.errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "{what}: {errors:?}");
        assert_eq!(
            self.store.gc_stats().failed_walks,
            0,
            "{what}: a stack walk failed"
        );
    }
}
