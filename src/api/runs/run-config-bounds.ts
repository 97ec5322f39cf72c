/**
 * The bounds of the free-form `config` an external run keeps (hyperparameters, a git commit):
 * it is stored in the run's row and sent with every read of the run, so its size, nesting and
 * arrays are bounded like any other field. A 1 MB config made a 100-run list page 102 MB, and a
 * 500,000-element array in one body cost seconds of event loop.
 */
import type { z } from 'zod';

/** Largest config, as UTF-8 JSON. */
export const RUN_CONFIG_MAX_BYTES = 64 * 1024;
/** Deepest nesting of objects and arrays inside the config (the config itself is depth 1). */
export const RUN_CONFIG_MAX_DEPTH = 16;
/** Longest array anywhere in the config. */
export const RUN_CONFIG_MAX_ARRAY = 1000;

/** The first bound `config` breaks, as a message with its path below `config`; null if none. */
function configProblem(
  config: Record<string, unknown>,
): { path: string[]; message: string } | null {
  // Iterative: the depth is what is being checked, so no recursion on it.
  const stack: Array<[unknown, string[]]> = [[config, []]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (path.length >= RUN_CONFIG_MAX_DEPTH)
      return { path, message: `nested deeper than ${RUN_CONFIG_MAX_DEPTH} levels` };
    if (Array.isArray(node) && node.length > RUN_CONFIG_MAX_ARRAY)
      return {
        path,
        message: `an array of ${node.length} elements; at most ${RUN_CONFIG_MAX_ARRAY}`,
      };
    for (const [key, value] of Object.entries(node)) stack.push([value, [...path, key]]);
  }
  const bytes = Buffer.byteLength(JSON.stringify(config));
  if (bytes > RUN_CONFIG_MAX_BYTES)
    return { path: [], message: `${bytes} bytes of JSON; at most ${RUN_CONFIG_MAX_BYTES}` };
  return null;
}

/** superRefine of the config schema: one issue naming the first bound broken. */
export function checkRunConfig(config: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const problem = configProblem(config);
  if (problem) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
}
