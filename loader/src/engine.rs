//! [`Engine`] and [`Config`]: loader-wide settings shared by every module
//! and store made with an engine.
//!
//! An `Engine` is an `Arc` of its settings (and, for interruption, the
//! epoch counter), so cloning it is cheap and it is `Send + Sync`. Modules
//! remember the engine they were loaded with and instantiate only into
//! stores of the same engine.

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
    // --- artifact trust (issue 11) ---
    // The trust policy (which artifacts this engine accepts, and how they
    // are verified) is added here by the artifact-trust work, with its
    // builder setter below.
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_wasm_stack: 512 * 1024,
            max_memory_pages: wasmc_format::WASM32_MAX_PAGES,
            max_table_elements: 10_000_000,
        }
    }
}

impl Config {
    /// The default settings: 512 KiB of Wasm stack, 65536 memory pages,
    /// 10,000,000 table elements.
    pub fn new() -> Config {
        Config::default()
    }

    /// The most stack Wasm may use, in bytes, counted from the outermost
    /// host-to-Wasm call on a thread; deeper recursion traps with
    /// "call stack exhausted". Each store starts with this value.
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
}

pub(crate) struct EngineInner {
    pub(crate) config: Config,
    /// The epoch counter for epoch interruption. Shared (`Arc`) with every
    /// store of the engine, whose compiled code reads it through
    /// `VMRuntimeLimits::epoch_ptr`.
    pub(crate) epoch: Arc<AtomicU64>,
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
    /// An engine with `config`. Fails if the settings are inconsistent (none
    /// can be yet; the `Result` leaves room for settings that can).
    pub fn new(config: &Config) -> Result<Engine, crate::Error> {
        Ok(Engine::from_config(config.clone()))
    }

    fn from_config(config: Config) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                config,
                epoch: Arc::new(AtomicU64::new(0)),
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
