/** A small typed event emitter. A throwing listener does not stop the others. */
export class Emitter<E extends { [K in keyof E]: unknown }> {
  private ls: { [K in keyof E]?: Set<(v: E[K]) => void> } = {};

  /** on adds a listener and returns a function that removes it. */
  on<K extends keyof E>(ev: K, fn: (v: E[K]) => void): () => void {
    const set = (this.ls[ev] ??= new Set());
    set.add(fn);
    return () => set.delete(fn);
  }

  protected emit<K extends keyof E>(ev: K, v: E[K]): void {
    for (const fn of this.ls[ev] ?? []) {
      try {
        fn(v);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
