/**
 * Multithreaded wasm backend in Node.
 *
 * tfjs-backend-wasm 4.22 switches threads off in Node (tfjs issue 3830) although its threaded
 * SIMD build was compiled with Emscripten's Node support. What fails is only how tfjs hands
 * the pthread worker its code: as `blob:` URLs, which Node's `Worker` and the worker's
 * `importScripts` shim (a file read) cannot open. So we write the worker script to a real file,
 * prefixed with a line that maps the worker's `URL.createObjectURL` (used for the main script
 * blob) to the package's own threaded-simd script, and map the main thread's
 * `URL.createObjectURL` for JavaScript blobs to that file.
 *
 * One more obstacle: the C++ side caps its pthreadpool at `logical cores / 2` (it assumes
 * hyper-threading), read once from `os.cpus().length` when the module instantiates — 1 thread
 * on a 2-core machine. {@link initWasmWithThreads} reports `2 * threads` cores for the duration
 * of the initialisation only.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

const require = createRequire(import.meta.url);

let workerPath: string | undefined;

function writeWorkerScript(): string {
  const mainScript =
    require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } =
    require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
      wasmWorkerContents: string;
    };
  const prelude =
    `URL.createObjectURL = () => ${JSON.stringify(mainScript)};\n` +
    `URL.revokeObjectURL = () => {};\n`;
  // As tfjs does before making its blob: the template literal turned the script's "\n"
  // escapes into real newlines, which would end string literals.
  const source = prelude + wasmWorkerContents.replace(/\n/g, '\\n');
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'googlenet-queue');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `tfjs-wasm-pthread-${digest}.cjs`);
  if (!existsSync(file)) {
    // Write-then-rename so a concurrent process never runs a half-written script.
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, source);
    renameSync(temp, file);
  }
  return file;
}

/**
 * Initialises and activates the wasm backend with `threads` XNNPACK threads (1 = tfjs' stock
 * single-threaded build). Must be the backend's first initialisation in this process.
 */
export async function initWasmWithThreads(threads: number): Promise<boolean> {
  if (threads <= 1 || typeof SharedArrayBuffer === 'undefined') return tf.setBackend('wasm');
  if (!workerPath) {
    workerPath = writeWorkerScript();
    const original = URL.createObjectURL.bind(URL);
    const file = workerPath;
    URL.createObjectURL = (object: Blob): string =>
      object instanceof Blob && object.type === 'application/javascript' ? file : original(object);
  }
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const cpus = os.cpus;
  const reported = cpus();
  os.cpus = () =>
    Array.from({ length: 2 * threads }, (_, i) => reported[i % reported.length] as os.CpuInfo);
  try {
    return await tf.setBackend('wasm');
  } finally {
    os.cpus = cpus;
  }
}
