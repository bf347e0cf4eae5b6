// Polling for a condition that another process or the engine's thread brings about.

/** Resolves once `predicate` is true (a throw counts as false), checked every 100 ms; rejects, naming `what`, after `ms`. */
export async function waitFor(predicate: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (
      await Promise.resolve()
        .then(predicate)
        .catch(() => false)
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}
