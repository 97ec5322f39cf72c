import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/** The messages eslint.config.js gives `code` as if it stood at `file`. */
async function restrictedImports(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint();
  const [result] = await eslint.lintText(code, { filePath: file });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

describe('import zones', () => {
  it('refuse imports against the floors', async () => {
    const refused: Array<[string, string]> = [
      ['src/model/x.ts', "import { Redis } from 'ioredis';"],
      ['src/model/wasm-kernels/x.ts', "import type { Run } from '../../db/index.js';"],
      ['src/data/x.ts', "import { TRAINING_QUEUE } from '../queue/training-queue.js';"],
      ['src/spec/x.ts', "import { createGoogLeNet } from '../model/googlenet.js';"],
      ['src/queue/x.ts', "import { runView } from '../api/runs/runs.service.js';"],
      ['src/api/runs/x.ts', "import { createRunStore } from '../../worker/run-store.js';"],
      ['src/worker/x.ts', "import { errorHandler } from '../api/errors.js';"],
      ['src/client/x.ts', "import { enqueueRun } from '../queue/enqueue-run.js';"],
      ['src/runs/x.ts', "import { createWorker } from '../worker/create-worker.js';"],
      ['src/worker/child/x.ts', "import { createPrismaClient } from '../../db/index.js';"],
      ['src/worker/child/x.ts', "import { createArtifactStore } from '../../artifacts/x.js';"],
      ['src/worker/child/x.ts', "import { Redis } from 'ioredis';"],
      ['src/worker/child/x.ts', "import { createRunStore } from '../run-store.js';"],
      ['src/worker/child/x.ts', "import { errorHandler } from '../../api/errors.js';"],
      ['src/worker/child/x.ts', "import { x } from '../../checkpoints/checkpoint-sync.js';"],
      ['src/artifacts/x.ts', "import { CHECKPOINT_FILES } from '../checkpoints/x.js';"],
      ['src/artifacts/x.ts', "import { createGoogLeNet } from '../model/googlenet.js';"],
      ['src/checkpoints/x.ts', "import type { PrismaClient } from '../db/index.js';"],
    ];
    for (const [file, code] of refused)
      expect(await restrictedImports(file, code), `${file}: ${code}`).toHaveLength(1);
  });

  it('let the imports the design allows through', async () => {
    const allowed: Array<[string, string]> = [
      ['src/data/x.ts', "import { mixSeed } from '../spec/seed.js';"],
      ['src/api/runs/x.ts', "import { enqueueRun } from '../../queue/enqueue-run.js';"],
      ['src/worker/x.ts', "import { createCancelRequests } from '../queue/cancel-requests.js';"],
      ['src/client/x.ts', "import type { RunEvent } from '../queue/run-events.js';"],
      ['src/worker/child/x.ts', "import type { ChildMessage } from '../ipc.js';"],
      ['src/worker/child/x.ts', "import { createGoogLeNet } from '../../model/googlenet.js';"],
      ['src/worker/child/x.ts', "import { runTraining } from './train-run.js';"],
      ['src/worker/x.ts', "import { createLifecycle } from '../runs/run-lifecycle.js';"],
      [
        'src/worker/child/x.ts',
        "import { saveCheckpoint } from '../../checkpoints/checkpoint.js';",
      ],
      [
        'src/checkpoints/x.ts',
        "import type { ArtifactStore } from '../artifacts/artifact-store.js';",
      ],
    ];
    for (const [file, code] of allowed)
      expect(await restrictedImports(file, code), `${file}: ${code}`).toEqual([]);
  });
});
