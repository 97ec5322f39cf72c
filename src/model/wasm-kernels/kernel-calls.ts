/**
 * Calls from one wasm kernel into other wasm kernels (Conv2D, Transpose, ...) without going
 * through the engine, so no autograd records and no tensors are created: only TensorInfos that
 * the caller must release with {@link release}.
 */
import * as tf from '@tensorflow/tfjs-core';
import type {
  KernelBackend,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { transpose2dOnHeap } from './heap-transpose.js';

const BACKEND = 'wasm';

/** Kernel functions captured before we override any, so overrides can fall back to the stock ones. */
const stockKernels = new Map<string, tf.KernelFunc>();

export function stockKernel(name: string): tf.KernelFunc {
  let fn = stockKernels.get(name);
  if (!fn) {
    const config = tf.getKernel(name, BACKEND);
    if (!config) throw new Error(`wasm backend has no '${name}' kernel`);
    fn = config.kernelFunc;
    stockKernels.set(name, fn);
  }
  return fn;
}

export function run(
  name: string,
  backend: KernelBackend,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const out = stockKernel(name)({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`kernel '${name}' returned several outputs`);
  return out;
}

export function transpose(backend: KernelBackend, x: TensorInfo, perm: number[]): TensorInfo {
  return run('Transpose', backend, { x }, { perm });
}

export function reshape(backend: KernelBackend, x: TensorInfo, shape: number[]): TensorInfo {
  return run('Reshape', backend, { x }, { shape });
}

export function release(backend: KernelBackend, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * C[M,N] = op(a) · op(b) for 2-D operands, using only the stock BatchMatMul's fast path.
 *
 * Why: tfjs-backend-wasm 4.22 sends untransposed products to XNNPACK but computes
 * transposeA/transposeB with a scalar loop (15-20x slower, measured), and its Transpose kernel
 * costs up to ~10 ns per element (so transposes here use transpose2dOnHeap). Each product is
 * rewritten with transposes placed on the smallest operands: aᵀb = (bᵀa)ᵀ, abᵀ = (baᵀ)ᵀ,
 * aᵀbᵀ = (ba)ᵀ.
 */
export function matMul2d(
  backend: KernelBackend,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): TensorInfo {
  const plain = (x: TensorInfo, y: TensorInfo): TensorInfo =>
    run('BatchMatMul', backend, { a: x, b: y }, { transposeA: false, transposeB: false });
  const size = (x: TensorInfo): number => (x.shape[0] ?? 0) * (x.shape[1] ?? 0);
  const m = (transposeA ? a.shape[1] : a.shape[0]) ?? 0;
  const n = transposeB ? (b.shape[0] ?? 0) : (b.shape[1] ?? 0);
  const outSize = m * n;
  if (!transposeA && !transposeB) {
    // XNNPACK repacks b on every call (~12 ns per value, measured): a dense layer's forward
    // pass, a small batch times a large kernel, spends most of its time packing the kernel.
    // Cᵀ = bᵀaᵀ packs the small aᵀ instead; the transposes cost less than the packing.
    if (size(b) <= 4 * (size(a) + outSize)) return plain(a, b);
    const bT = transpose2dOnHeap(backend, b);
    const aT = transpose2dOnHeap(backend, a);
    const cT = plain(bT, aT);
    const out = transpose2dOnHeap(backend, cT);
    release(backend, bT, aT, cT);
    return out;
  }
  if (transposeA && transposeB) {
    const ba = plain(b, a);
    const out = transpose2dOnHeap(backend, ba);
    release(backend, ba);
    return out;
  }
  // Exactly one operand is transposed: either transpose it directly, or compute Cᵀ from the
  // other operand transposed and transpose the (usually small) result back.
  const direct = transposeA ? a : b;
  const other = transposeA ? b : a;
  if (size(direct) <= size(other) + outSize) {
    const t = transpose2dOnHeap(backend, direct);
    const out = transposeA ? plain(t, b) : plain(a, t);
    release(backend, t);
    return out;
  }
  const otherT = transpose2dOnHeap(backend, other);
  // transposeA: C = aᵀb, Cᵀ = bᵀa.  transposeB: C = abᵀ, Cᵀ = baᵀ.
  const cT = transposeA ? plain(otherT, a) : plain(b, otherT);
  const out = transpose2dOnHeap(backend, cT);
  release(backend, otherT, cT);
  return out;
}
