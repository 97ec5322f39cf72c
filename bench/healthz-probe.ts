/**
 * Asks `/healthz` every `intervalMs`, one request at a time, and keeps each answer's latency:
 * the event loop's responsiveness as a client sees it. A request that gets no answer within
 * `timeoutMs` counts at that many milliseconds (and as failed), so a stall is never hidden.
 */
export interface HealthzProbe {
  /** Latencies so far (ms), and failures (no 200 within the timeout). */
  sample(): { latencies: number[]; failures: number };
  /** Starts a fresh sample (the previous one is returned). */
  reset(): { latencies: number[]; failures: number };
  stop(): Promise<void>;
}

export function startHealthzProbe(base: string, intervalMs = 25, timeoutMs = 10_000): HealthzProbe {
  let latencies: number[] = [];
  let failures = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      let ok: boolean;
      try {
        const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        ok = res.status === 200;
      } catch {
        ok = false;
      }
      latencies.push(performance.now() - started);
      if (!ok) failures++;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    sample: () => ({ latencies: [...latencies], failures }),
    reset() {
      const previous = { latencies, failures };
      latencies = [];
      failures = 0;
      return previous;
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}
