//! [`Engine`] and [`Config`]: loader-wide settings shared by every module
//! and store made with an engine.
//!
//! An `Engine` is an `Arc` of its settings (and, for interruption, the
//! epoch counter), so cloning it is cheap and it is `Send + Sync`. Modules
//! remember the engine they were loaded with and instantiate only into
//! stores of the same engine.

use crate::trust::TrustPolicy;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Settings of an [`Engine`], builder style.
///
/// ```
/// use wasmc_loader::{Config, Engine};
/// let mut config = Config::new();
/// config.max_wasm_stack(256 * 1024).max_memory_pages(1024);
/// let engine = Engine::new(&config)?;
/// # Ok::<(), wasmc_loader::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_memory_pages: u64,
    pub(crate) max_table_elements: u32,
    pub(crate) allocation: InstanceAllocationStrategy,
    /// Which artifacts the safe loading functions accept, and how they are
    /// verified ([`Config::trust`]).
    pub(crate) trust: TrustPolicy,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_wasm_stack: 512 * 1024,
            max_memory_pages: wasmc_format::WASM32_MAX_PAGES,
            max_table_elements: 10_000_000,
            allocation: InstanceAllocationStrategy::OnDemand,
            trust: TrustPolicy::default(),
        }
    }
}

/// How instances' memories and tables are allocated (Wasmtime's
/// `InstanceAllocationStrategy`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum InstanceAllocationStrategy {
    /// Each memory and table is allocated when its instance is created and
    /// freed when its store drops (the default).
    #[default]
    OnDemand,
    /// A pool of preallocated slots, made with the engine and shared by its
    /// stores: instantiation takes slots and teardown gives them back, reset
    /// in time proportional to the pages that were touched. The next
    /// instance of the same module in a slot finds its memory's initial
    /// contents already there. Instantiation fails with an error naming
    /// the limit when one is reached, and then holds no slot (it allocates
    /// everything before the instance enters the store); a slot never
    /// shows a previous instance's data.
    Pooling(PoolingAllocationConfig),
}

/// The limits of the pooling allocator
/// ([`InstanceAllocationStrategy::Pooling`]), builder style. Every memory
/// slot reserves address space (not memory) for the loader's memory layout
/// (6 GiB: 4 GiB plus a 2 GiB guard).
///
/// ```
/// use wasmc_loader::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
/// let mut pool = PoolingAllocationConfig::default();
/// pool.total_memories(16).total_tables(16).total_core_instances(16)
///     .max_memory_size(64 << 20);
/// let mut config = Config::new();
/// config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
/// let engine = Engine::new(&config)?;
/// # Ok::<(), wasmc_loader::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolingAllocationConfig {
    pub(crate) total_core_instances: u32,
    pub(crate) total_memories: u32,
    pub(crate) total_tables: u32,
    pub(crate) max_memory_size: u64,
    pub(crate) table_elements: u32,
    pub(crate) max_core_instance_size: usize,
}

impl Default for PoolingAllocationConfig {
    /// 1000 instances, memories and tables; memories of up to 4 GiB, tables
    /// of up to 20,000 elements, VMContexts of up to 1 MiB (Wasmtime's
    /// defaults).
    fn default() -> Self {
        PoolingAllocationConfig {
            total_core_instances: 1000,
            total_memories: 1000,
            total_tables: 1000,
            max_memory_size: 1 << 32,
            table_elements: 20_000,
            max_core_instance_size: 1 << 20,
        }
    }
}

impl PoolingAllocationConfig {
    /// The most instances alive at once, across the engine's stores.
    pub fn total_core_instances(&mut self, n: u32) -> &mut Self {
        self.total_core_instances = n;
        self
    }

    /// The number of memory slots: the most memories defined by instances
    /// alive at once (host-created memories are not pooled).
    pub fn total_memories(&mut self, n: u32) -> &mut Self {
        self.total_memories = n;
        self
    }

    /// The number of table slots: the most tables defined by instances
    /// alive at once (host-created tables are not pooled).
    pub fn total_tables(&mut self, n: u32) -> &mut Self {
        self.total_tables = n;
        self
    }

    /// The most bytes a pooled memory may have, initially or by growing (a
    /// multiple of 64 KiB, at most the 6 GiB slot). A memory never grows
    /// past 4 GiB in this loader whatever this allows: the rest of its slot
    /// is guard.
    pub fn max_memory_size(&mut self, bytes: u64) -> &mut Self {
        self.max_memory_size = bytes;
        self
    }

    /// The most elements a pooled table may have, initially or by growing.
    pub fn table_elements(&mut self, n: u32) -> &mut Self {
        self.table_elements = n;
        self
    }

    /// The most bytes of an instance's VMContext (its per-instance state:
    /// imports, definitions, one 24-byte funcref per function, ...). Each
    /// of the `total_core_instances` slots reserves this much address
    /// space; pages are committed only when touched.
    pub fn max_core_instance_size(&mut self, bytes: usize) -> &mut Self {
        self.max_core_instance_size = bytes;
        self
    }
}

impl Config {
    /// The default settings: 512 KiB of Wasm stack, 65536 memory pages,
    /// 10,000,000 table elements, and the default [`TrustPolicy`] (content
    /// hash checked, signatures optional).
    pub fn new() -> Config {
        Config::default()
    }

    /// The most stack Wasm may use, in bytes, counted from the outermost
    /// host-to-Wasm call on a thread; deeper recursion traps with
    /// "call stack exhausted". Each store starts with this value;
    /// [`Engine::new`] refuses 0.
    pub fn max_wasm_stack(&mut self, bytes: usize) -> &mut Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// The most pages any memory of a store may grow to (a fixed cap; for
    /// per-store decisions install a [`crate::ResourceLimiter`]).
    pub fn max_memory_pages(&mut self, pages: u64) -> &mut Self {
        self.max_memory_pages = pages.min(wasmc_format::WASM32_MAX_PAGES);
        self
    }

    /// The most elements any table of a store may grow to.
    pub fn max_table_elements(&mut self, n: u32) -> &mut Self {
        self.max_table_elements = n;
        self
    }

    /// How instances' memories and tables are allocated: on demand (the
    /// default) or from a pool made with the engine.
    pub fn allocation_strategy(&mut self, s: InstanceAllocationStrategy) -> &mut Self {
        self.allocation = s;
        self
    }
    /// Which artifacts [`crate::Module::from_file`] and
    /// [`crate::Module::from_bytes`] accept: the Ed25519 keys whose
    /// signatures are trusted and whether a signature is required (see
    /// [`TrustPolicy`]). Every safe load verifies the artifact per this
    /// policy before any of its code is executable.
    ///
    /// ```
    /// use wasmc_loader::{Config, Engine, Module, TrustPolicy};
    /// # let artifact = wasmc_compiler::compile(b"(module)", &Default::default()).unwrap();
    /// let mut policy = TrustPolicy::new();
    /// // Typically: policy.trust_key_file(&std::fs::read_to_string("release.pub")?)?;
    /// policy.require_signature(true);
    /// let mut config = Config::new();
    /// config.trust(policy);
    /// let engine = Engine::new(&config)?;
    /// // An unsigned artifact is refused before any code is mapped executable.
    /// assert!(Module::from_bytes(&engine, &artifact).is_err());
    /// # Ok::<(), wasmc_loader::Error>(())
    /// ```
    pub fn trust(&mut self, policy: TrustPolicy) -> &mut Self {
        self.trust = policy;
        self
    }

    /// The trust policy ([`Config::trust`]).
    pub fn trust_policy(&self) -> &TrustPolicy {
        &self.trust
    }
}

pub(crate) struct EngineInner {
    pub(crate) config: Config,
    /// The epoch counter for epoch interruption. Shared (`Arc`) with every
    /// store of the engine, whose compiled code reads it through
    /// `VMRuntimeLimits::epoch_ptr`.
    pub(crate) epoch: Arc<AtomicU64>,
    /// The pooling allocator's slots, with `InstanceAllocationStrategy::Pooling`.
    pub(crate) pool: Option<Arc<crate::vm::pool::Pool>>,
}

/// The loader-wide context: settings ([`Config`]) shared by the modules
/// loaded and the stores created with it. Cheap to clone, `Send + Sync`.
///
/// ```
/// use wasmc_loader::{Engine, Store};
/// let engine = Engine::default();
/// let store = Store::new(&engine, 42u32);
/// assert_eq!(*store.data(), 42);
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::from_config(Config::default())
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Engine {
    /// An engine with `config`. With the pooling allocator, this reserves
    /// its memory slots; fails if a pooling limit is out of range or the
    /// address space cannot be reserved.
    pub fn new(config: &Config) -> Result<Engine, crate::Error> {
        // No Wasm function could run (as in Wasmtime, refused up front
        // rather than as a stack overflow at the first call).
        if config.max_wasm_stack == 0 {
            return Err(crate::Error::msg("max_wasm_stack cannot be zero"));
        }
        let pool = match &config.allocation {
            InstanceAllocationStrategy::OnDemand => None,
            InstanceAllocationStrategy::Pooling(p) => Some(
                crate::vm::pool::Pool::new(crate::vm::pool::PoolLimits {
                    total_core_instances: p.total_core_instances,
                    total_memories: p.total_memories,
                    total_tables: p.total_tables,
                    max_memory_size: p.max_memory_size,
                    table_elements: p.table_elements,
                    max_core_instance_size: p.max_core_instance_size,
                })
                .map_err(crate::Error::msg)?,
            ),
        };
        Ok(Engine {
            inner: Arc::new(EngineInner {
                config: config.clone(),
                epoch: Arc::new(AtomicU64::new(0)),
                pool,
            }),
        })
    }

    fn from_config(config: Config) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                config,
                epoch: Arc::new(AtomicU64::new(0)),
                pool: None,
            }),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Advances the engine's epoch by one. Callable from any thread (a
    /// timer thread, typically); Wasm of every store of this engine whose
    /// deadline ([`crate::Store::set_epoch_deadline`]) is now reached traps
    /// with [`crate::TrapCode::Interrupted`] at its next function entry or
    /// loop header. Only code compiled with `--epoch-interruption` checks.
    ///
    /// ```
    /// use wasmc_loader::Engine;
    /// let engine = Engine::default();
    /// let e2 = engine.clone();
    /// std::thread::spawn(move || e2.increment_epoch()).join().unwrap();
    /// assert_eq!(engine.current_epoch(), 1);
    /// ```
    pub fn increment_epoch(&self) {
        self.inner.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// The engine's current epoch (0 at creation).
    pub fn current_epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Relaxed)
    }

    /// Whether `a` and `b` are clones of the same engine.
    pub fn same(a: &Engine, b: &Engine) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }
}
