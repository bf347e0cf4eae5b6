// One V8 setting for the process that runs PGlite's WebAssembly, applied
// before the engine's thread compiles it.
//
// V8 now and then aborts a process in its bookkeeping of WebAssembly code
// pages (nodejs/node#64500, "Check failed: jit_page_->allocations_.erase(addr)
// == 1"). The stack it printed in a CI rehearsal, resolved against the pinned
// Node's symbols, runs Runtime_TierUpWasmToJSWrapper → ~WasmCodeRefScope →
// FreeDeadCode → WasmImportWrapperCache::Free → WasmCodeAllocator::FreeCode →
// ThreadIsolation::UnregisterWasmAllocation: the wasm-to-JS import wrappers,
// which V8 compiles for an import once calls through it have run a budget
// (1,000 by default) and frees once no instance uses them. PGlite's imports
// (its file system, its longjmp) pass that budget within the first queries
// (18 wrappers compiled for 3,000 queries). With the budget out of reach V8
// compiles none: every import goes through the generic wrapper, and nothing
// of that kind is ever freed (test/wasm-wrappers.test.ts counts them in
// V8's own trace; query times measured the same either way). This removes
// the path the abort was seen on, not every path to it: the supervisor
// (EMBEDDED_ENGINE=process) still turns any abort into a restart.
import v8 from 'node:v8';

/** The V8 flag: the most calls an int flag holds, beyond any engine's life in practice. */
export const NO_IMPORT_WRAPPER_TIERING = '--wasm-wrapper-tiering-budget=2147483647';

let applied = false;

/**
 * Sets NO_IMPORT_WRAPPER_TIERING for this process (V8's flags are the
 * process's, worker threads included); once is enough. It holds for
 * WebAssembly instantiated after it: call it before the engine's thread starts.
 */
export function avoidImportWrapperTiering(): void {
  if (applied) return;
  applied = true;
  v8.setFlagsFromString(NO_IMPORT_WRAPPER_TIERING);
}
