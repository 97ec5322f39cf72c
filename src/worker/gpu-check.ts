/**
 * The GPU self-check a user runs on a GPU host before trusting it with jobs:
 *
 *   docker compose run --rm --no-deps worker-gpu node dist/src/worker/gpu-check.js [--steps N]
 *
 * 1. the driver: `nvidia-smi` lists the GPUs this container sees (name, compute capability,
 *    driver version, memory);
 * 2. the libraries: a probe process loads tfjs-node-gpu and reads what TensorFlow itself says
 *    on stderr: the GPU devices it created, or why it created none (a CUDA or cuDNN library
 *    missing, a driver too old for CUDA 11, no kernels for this architecture);
 * 3. the work: the probe trains a few steps of GoogLeNet (32x32, batch 64) on generated images
 *    and prints images/s.
 * Exits 0 when TensorFlow trained on a GPU, 1 with the cause otherwise. TensorFlow falls back to
 * its CPU without a word when a GPU cannot be used; this check is where that is caught.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProbeResult {
  imagesPerSec: number;
  steps: number;
  firstStepMs: number;
}

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '10' },
    probe: { type: 'boolean', default: false },
  },
});
const steps = Number(args.steps);
if (!Number.isInteger(steps) || steps < 1 || steps > 1000) {
  process.stderr.write('gpu-check: --steps must be an integer from 1 to 1000\n');
  process.exit(2);
}

/** The probe: runs in its own process so that the parent can read TensorFlow's stderr. */
async function probe(): Promise<void> {
  const tf = await import('@tensorflow/tfjs-core');
  const { loadBackend } = await import('../model/backend.js');
  const { createGoogLeNet } = await import('../model/googlenet.js');
  const { createTrainer } = await import('../model/train-step.js');
  const { syntheticBatch } = await import('../data/synthetic.js');
  await loadBackend({ backend: 'tfjs-node-gpu' });
  const batch = 64;
  const input = 32;
  const model = createGoogLeNet({ numClasses: 10, inputSize: input, width: 1 });
  const trainer = createTrainer({
    model,
    optimizer: { type: 'sgd', learningRate: 0.01, momentum: 0.9 },
    stepsPerEpoch: steps + 1,
    totalSteps: steps + 1,
  });
  const data = syntheticBatch(
    { numClasses: 10, size: batch, seed: 1, inputSize: input, channels: 3 },
    0,
    batch,
  );
  const images = tf.tensor4d(data.images, [batch, input, input, 3]);
  const labels = tf.tensor1d(data.labels, 'int32');
  const t0 = performance.now();
  trainer.trainStep(images, labels); // the first step compiles kernels (or JIT-compiles PTX)
  const firstStepMs = performance.now() - t0;
  const t1 = performance.now();
  for (let i = 0; i < steps; i++) trainer.trainStep(images, labels);
  const imagesPerSec = (steps * batch * 1000) / (performance.now() - t1);
  const result: ProbeResult = { imagesPerSec, steps, firstStepMs };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function fail(cause: string): never {
  process.stderr.write(`gpu-check: FAILED: ${cause}\n`);
  process.exit(1);
}

/** Step 1: what the driver shows. Returns the compute capabilities, e.g. ['8.6']. */
function checkDriver(): string[] {
  let csv: string;
  try {
    csv = execFileSync(
      'nvidia-smi',
      ['--query-gpu=index,name,compute_cap,driver_version,memory.total', '--format=csv,noheader'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    fail(
      missing
        ? 'no NVIDIA driver is visible in this container (nvidia-smi is missing). On the host: ' +
            'install the NVIDIA driver and the NVIDIA Container Toolkit, then give the container ' +
            'the GPUs (compose: the worker-gpu service does; docker run: --gpus all).'
        : `nvidia-smi failed: ${String((error as { stderr?: string }).stderr ?? error).trim()} ` +
            '(driver not loaded, or a driver/library version mismatch after a driver upgrade: reboot the host)',
    );
  }
  const gpus = csv.trim().split('\n').filter(Boolean);
  if (gpus.length === 0) fail('nvidia-smi lists no GPU');
  say(`driver: ${gpus.length} GPU(s) visible`);
  for (const line of gpus) say(`  ${line}`);
  return gpus.map((line) => line.split(',')[2]?.trim() ?? '');
}

/** What TensorFlow's log says went wrong, when it created no GPU device. */
function diagnose(log: string): string {
  const missing = [...log.matchAll(/Could not load dynamic library '([^']+)'/g)].map((m) => m[1]);
  if (missing.length > 0) {
    return (
      `TensorFlow could not load ${[...new Set(missing)].join(', ')}: the CUDA 11 / cuDNN 8 ` +
      'libraries of the image are missing or not on LD_LIBRARY_PATH (build the image with a CUDA ' +
      '11 + cuDNN 8 base: the CUDA_IMAGE build argument)'
    );
  }
  if (/driver version is insufficient/i.test(log)) {
    return 'the host driver is too old for CUDA 11 (needs 450.80.02 or newer on Linux): upgrade it';
  }
  if (/no kernel image is available|CUDA_ERROR_NO_BINARY_FOR_GPU/i.test(log)) {
    return 'TensorFlow 2.9 has no kernels for this GPU architecture and PTX compilation failed';
  }
  if (/CUDA_ERROR_NO_DEVICE|no CUDA-capable device/i.test(log)) {
    return 'CUDA sees no device: the container was not given the GPUs (NVIDIA Container Toolkit)';
  }
  if (/Cannot find (module|package) '@tensorflow\/tfjs-node-gpu'/.test(log)) {
    return 'tfjs-node-gpu is not installed in this image: build the worker-gpu target';
  }
  return 'TensorFlow created no GPU device; its log is above';
}

async function main(): Promise<void> {
  const capabilities = checkDriver();
  if (capabilities.some((cap) => Number(cap) >= 9)) {
    say(
      'note: compute capability 9.x (Hopper) or newer: TensorFlow 2.9 ships no native kernels ' +
        'for it, so the driver compiles PTX at the first start (can take many minutes) and ' +
        'keeps the result in CUDA_CACHE_PATH, which compose keeps in the cuda-cache volume.',
    );
  }
  say(`libraries and training: ${steps} steps of GoogLeNet (32x32, batch 64)...`);
  const probeRun = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--probe', '--steps', String(steps)],
    {
      encoding: 'utf8',
      // TensorFlow logs device creation at INFO (level 0); keep it.
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '0' },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const log = `${probeRun.stderr ?? ''}`;
  const devices = [...log.matchAll(/Created (?:TensorFlow )?device \S+GPU:\d+[^\n]*/g)].map(
    (m) => m[0],
  );
  if (devices.length === 0 || probeRun.status !== 0) {
    process.stderr.write(`--- TensorFlow's log\n${log.split('\n').slice(-40).join('\n')}\n`);
    fail(
      probeRun.status !== 0 && devices.length > 0 ? 'training failed on the GPU' : diagnose(log),
    );
  }
  say(`TensorFlow: ${devices.length} GPU device(s)`);
  for (const device of devices) say(`  ${device}`);
  const result = JSON.parse(probeRun.stdout.trim().split('\n').pop() ?? '{}') as ProbeResult;
  say(`first step: ${(result.firstStepMs / 1000).toFixed(1)} s (kernel set-up included)`);
  say(`training: ${result.imagesPerSec.toFixed(0)} images/s over ${result.steps} steps`);
  say('gpu-check: OK');
}

if (args.probe) await probe();
else await main();
