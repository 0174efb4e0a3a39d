//! [`Memory`]: the public handle of a linear memory: its size, growth,
//! bytes, and the split borrow of its bytes with the store's host data
//! ([`Memory::data_and_store_mut`]). The mapping and its growth are the
//! runtime's (`vm/memory.rs`), the split borrow is `vm/store.rs`'s.

use crate::error::Error;
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::vm::memory::MemoryData;
use crate::vm::store::Stored;
use wasmc_format::MemoryType;

/// A linear memory of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory(pub(crate) Stored);

impl Memory {
    /// Creates a memory owned by the host (for imports such as spectest's).
    /// It counts towards the store's memory limit and its size is asked of
    /// the store's [`ResourceLimiter`](crate::ResourceLimiter), as for the
    /// memories of an instantiation.
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> Result<Memory, Error> {
        let store = store.as_context_mut().store;
        store
            .admit_host_made(crate::vm::store::HostMade::Memory)
            .map_err(crate::InstantiationError::Resource)?;
        if !store.memory_growing(0, ty.min, ty.max)? {
            return Err(crate::InstantiationError::Resource(format!(
                "memory of {} pages refused by the store's limiter",
                ty.min
            ))
            .into());
        }
        let data = MemoryData::new(ty, store.max_memory_pages, None)
            .map_err(crate::InstantiationError::Resource)?;
        store.memories.push(data);
        Ok(Memory(store.stored(store.memories.len() - 1)))
    }

    pub(crate) fn data_of<'a>(&self, store: &'a StoreOpaque) -> &'a MemoryData {
        &store.memories[store.check(self.0, "memory")]
    }

    pub(crate) fn data_of_mut<'a>(&self, store: &'a mut StoreOpaque) -> &'a mut MemoryData {
        let i = store.check(self.0, "memory");
        &mut store.memories[i]
    }

    /// The memory's type; `min` is the current size.
    pub fn ty(&self, store: impl AsContext) -> MemoryType {
        self.data_of(store.as_context().store).current_type()
    }

    /// Size in pages.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.data_of(store.as_context().store).pages()
    }

    /// Size in bytes.
    pub fn data_size(&self, store: impl AsContext) -> usize {
        self.data_of(store.as_context().store).len()
    }

    /// Grows by `delta` pages; returns the old size in pages.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64) -> Result<u64, Error> {
        let store = store.as_context_mut().store;
        let i = store.check(self.0, "memory");
        store
            .grow_memory(i, delta)?
            .ok_or_else(|| Error::msg("failed to grow memory"))
    }

    /// The memory's bytes.
    pub fn data<'a, T: AsContext + 'a>(&self, store: &'a T) -> &'a [u8] {
        self.data_of(store.as_context().store).bytes()
    }

    /// The memory's bytes, writable.
    pub fn data_mut<'a, T: AsContextMut + 'a>(&self, store: &'a mut T) -> &'a mut [u8] {
        self.data_of_mut(store.as_context_mut().store).bytes_mut()
    }

    /// The memory's bytes and the store's host data, both writable at once
    /// (Wasmtime's `Memory::data_and_store_mut`).
    ///
    /// [`Memory::data_mut`] and [`Caller::data_mut`](crate::Caller::data_mut)
    /// each borrow the whole store, so a host function cannot hold the
    /// guest's bytes while it updates its own state; this splits the one
    /// borrow into the two. Both live as long as the borrow of `store`
    /// (a [`Store`](crate::Store), a [`Caller`](crate::Caller) or a
    /// [`StoreContextMut`](crate::StoreContextMut)); until they end, the
    /// store can do nothing else, so nothing can grow or unmap the memory
    /// under the slice (see the comments of the runtime's split borrow in
    /// `vm/store.rs`).
    ///
    /// Panics if the memory belongs to another store.
    ///
    /// A host function that copies a string out of the guest's memory into
    /// its state and writes a reply back:
    ///
    /// ```
    /// use wasmc_loader::{Caller, Engine, Extern, Linker, Module, Store};
    /// # let artifact = wasmc_compiler::compile(br#"(module
    /// #   (import "host" "log" (func $log (param i32 i32)))
    /// #   (memory (export "memory") 1)
    /// #   (data (i32.const 16) "hello")
    /// #   (func (export "run") (result i32)
    /// #     (call $log (i32.const 16) (i32.const 5))
    /// #     (i32.load8_u (i32.const 0))))"#, &Default::default()).unwrap();
    /// let engine = Engine::default();
    /// let module = Module::from_bytes(&engine, &artifact)?;
    /// let mut linker = Linker::<Vec<String>>::new(&engine);
    /// linker.func_wrap("host", "log", |mut caller: Caller<'_, Vec<String>>, ptr: i32, len: i32| {
    ///     let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
    ///         anyhow::bail!("no memory");
    ///     };
    ///     let (bytes, log) = memory.data_and_store_mut(&mut caller);
    ///     let text = bytes
    ///         .get(ptr as usize..)
    ///         .and_then(|b| b.get(..len as usize))
    ///         .ok_or_else(|| anyhow::anyhow!("out of bounds"))?;
    ///     log.push(String::from_utf8_lossy(text).into_owned()); // the store's data...
    ///     bytes[0] = log.len() as u8; // ...and the guest's memory, both at once
    ///     Ok(())
    /// })?;
    /// let mut store = Store::new(&engine, Vec::new());
    /// let instance = linker.instantiate(&mut store, &module)?;
    /// let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
    /// assert_eq!(run.call(&mut store, ())?, 1);
    /// assert_eq!(store.data(), &["hello"]);
    /// # Ok::<(), wasmc_loader::Error>(())
    /// ```
    ///
    /// The bytes cannot be kept across anything else done with the store,
    /// such as growing the memory:
    ///
    /// ```compile_fail,E0499
    /// # use wasmc_loader::{Caller, Memory};
    /// fn host(mut caller: Caller<'_, u32>, memory: Memory) {
    ///     let (bytes, data) = memory.data_and_store_mut(&mut caller);
    ///     memory.grow(&mut caller, 1).unwrap();
    ///     bytes[0] = *data as u8;
    /// }
    /// ```
    ///
    /// or reaching the data the usual way while they are held:
    ///
    /// ```compile_fail,E0499
    /// # use wasmc_loader::{Caller, Memory};
    /// fn host(mut caller: Caller<'_, u32>, memory: Memory) {
    ///     let (bytes, _) = memory.data_and_store_mut(&mut caller);
    ///     *caller.data_mut() += 1;
    ///     bytes[0] = 1;
    /// }
    /// ```
    ///
    /// and they do not outlive the store:
    ///
    /// ```compile_fail,E0505
    /// # use wasmc_loader::{Memory, Store};
    /// fn keep(mut store: Store<u32>, memory: Memory) -> u8 {
    ///     let (bytes, _) = memory.data_and_store_mut(&mut store);
    ///     drop(store);
    ///     bytes[0]
    /// }
    /// ```
    pub fn data_and_store_mut<'a, S>(&self, store: &'a mut S) -> (&'a mut [u8], &'a mut S::Data)
    where
        S: AsContextMut,
        S::Data: 'static,
    {
        let store = store.as_context_mut().store;
        let i = store.check(self.0, "memory");
        let (bytes, data) = store.memory_and_data_mut(i);
        (bytes, crate::store::downcast_data_mut(data))
    }

    /// Base address of the memory (may change on grow in explicit mode).
    pub fn data_ptr(&self, store: impl AsContext) -> *mut u8 {
        self.data_of(store.as_context().store).base()
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, store: impl AsContext, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        let d = self.data_of(store.as_context().store).bytes();
        let src = offset
            .checked_add(buf.len())
            .and_then(|end| d.get(offset..end))
            .ok_or_else(|| Error::msg("out of bounds memory access"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// Copies `buf` into the memory at `offset`.
    pub fn write(
        &self,
        mut store: impl AsContextMut,
        offset: usize,
        buf: &[u8],
    ) -> Result<(), Error> {
        let d = self.data_of_mut(store.as_context_mut().store).bytes_mut();
        let dst = offset
            .checked_add(buf.len())
            .and_then(|end| d.get_mut(offset..end))
            .ok_or_else(|| Error::msg("out of bounds memory access"))?;
        dst.copy_from_slice(buf);
        Ok(())
    }
}
