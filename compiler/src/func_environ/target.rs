//! How [`FuncEnv`] describes the target to cranelift-wasm: the frontend
//! configuration, and how reference types are represented (a pointer) and
//! which of them need stack maps (externrefs, for the collector).

use super::FuncEnv;
use cranelift_codegen::ir;
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_wasm::{TargetEnvironment, TypeConvert, WasmHeapType};

impl TypeConvert for FuncEnv<'_> {
    fn lookup_heap_type(&self, _index: wasmparser::UnpackedIndex) -> WasmHeapType {
        // Typed function references are not enabled, so validation has
        // already rejected every concrete heap type.
        unreachable!("concrete heap types are not enabled")
    }

    fn lookup_type_index(
        &self,
        _index: wasmparser::UnpackedIndex,
    ) -> cranelift_wasm::EngineOrModuleTypeIndex {
        unreachable!("concrete heap types are not enabled")
    }
}

impl TargetEnvironment for FuncEnv<'_> {
    fn target_config(&self) -> TargetFrontendConfig {
        self.isa.frontend_config()
    }

    fn heap_access_spectre_mitigation(&self) -> bool {
        self.isa.flags().enable_heap_access_spectre_mitigation()
    }

    fn proof_carrying_code(&self) -> bool {
        false
    }

    fn reference_type(&self, _ty: WasmHeapType) -> (ir::Type, bool) {
        // externrefs are reference counted with deferred counting: the
        // collector must find every one live in a frame, but through
        // `crate::stack_maps`, not cranelift-frontend's spiller (which loses
        // references), so nothing is declared to the frontend here. funcrefs
        // point into VMContexts that outlive the call and need no stack map.
        (self.ptr(), false)
    }
}
