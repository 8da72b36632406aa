/**
 * A signal that aborts as soon as any of its sources does, unlinked again by `dispose()`.
 *
 * `AbortSignal.any` would do the aborting, but each derived signal stays registered (a WeakRef plus a
 * finalizer entry) in every source until that source aborts. A gateway session's signal lives as long
 * as the session, so one registration per call accumulated for its whole life, and the weak cells made
 * every garbage collection slower. Here the listeners are removed when the call is over.
 */
export function linkedSignal(sources: readonly AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const aborted = sources.find((s) => s.aborted);
  if (aborted) {
    controller.abort(aborted.reason);
    return { signal: controller.signal, dispose: () => undefined };
  }
  const onAbort = function (this: AbortSignal): void {
    dispose();
    controller.abort(this.reason);
  };
  const dispose = (): void => {
    for (const s of sources) s.removeEventListener('abort', onAbort);
  };
  for (const s of sources) s.addEventListener('abort', onAbort);
  return { signal: controller.signal, dispose };
}
