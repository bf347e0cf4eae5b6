// V8's abort in its bookkeeping of WebAssembly code pages (nodejs/node#64500,
// "Check failed: jit_page_->allocations_.erase(addr) == 1") struck an engine
// at its stop in a CI rehearsal with this native stack, resolved against the
// pinned Node's symbols: Runtime_TierUpWasmToJSWrapper → ~WasmCodeRefScope →
// FreeDeadCode → WasmImportWrapperCache::Free → WasmCodeAllocator::FreeCode →
// ThreadIsolation::UnregisterWasmAllocation. That is the import wrappers V8
// compiles once a call from WebAssembly into JavaScript has run its tiering
// budget, and frees again. The engine sets the budget out of reach
// (wasm-flags.ts) before PGlite is compiled, so that no such wrapper is ever
// compiled or freed: the generic wrapper serves every import (measured: no
// difference in query time). Counted here, not timed: V8's own trace of what
// it compiled, in a process running the engine as `npm start` does.
import { spawnSync } from 'node:child_process';
import { describeEmbedded } from './support/backend.ts';

describeEmbedded('a server backend runs no PGlite WebAssembly', "V8's import wrappers for the engine's WebAssembly", () => {
  test('an engine serving 3,000 queries makes V8 compile no wasm-to-JS import wrapper (the code whose freeing aborted the process)', () => {
    const run = spawnSync(process.execPath, ['--trace-wasm-compilation-times', new URL('./support/wrapper-count.ts', import.meta.url).pathname], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect({ status: run.status, done: run.stdout.includes('done\n') }).toEqual({ status: 0, done: true });
    // The trace names each compilation: WebAssembly functions (Liftoff, TurboFan) and wrappers.
    expect(run.stdout).toMatch(/Compiled function .* using Liftoff/);
    expect(run.stdout.split('\n').filter((line) => /WasmToJS wrapper/.test(line))).toEqual([]);
  });
});
