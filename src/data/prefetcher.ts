/**
 * Keeps the next `depth` training batches in flight: taking step n starts n+1 … n+depth, so the
 * pipeline works while the network trains. Positions are global step numbers, which keeps resume
 * simple: a resumed run starts taking at its checkpoint's step.
 */
export class Prefetcher<T> {
  private readonly inFlight = new Map<number, Promise<T>>();

  constructor(
    private readonly depth: number,
    private readonly lastStep: number,
    private readonly produce: (step: number) => Promise<T>,
  ) {}

  take(step: number): Promise<T> {
    for (let s = step; s <= Math.min(step + this.depth, this.lastStep - 1); s++) {
      if (!this.inFlight.has(s)) {
        const promise = this.produce(s);
        promise.catch(() => undefined); // surfaced when taken
        this.inFlight.set(s, promise);
      }
    }
    const batch = this.inFlight.get(step) ?? this.produce(step);
    this.inFlight.delete(step);
    return batch;
  }

  /** Drops batches no one will take (the run stopped). */
  clear(): void {
    this.inFlight.clear();
  }
}
