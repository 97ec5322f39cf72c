/**
 * Direct access to the wasm backend's heap, for kernels written in JavaScript.
 */
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';

/** The slice of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

/** Allocates a float32 output on the heap. Take views (heapView) only after all allocations. */
export function makeOutput(backend: KernelBackend, shape: number[]): TensorInfo {
  return (backend as unknown as WasmHeapBackend).makeOutput(shape, 'float32');
}

/**
 * A Float32Array over a tensor's heap memory. Allocating may grow, and so replace, the heap's
 * buffer, which detaches earlier views: take views after the last makeOutput of a kernel.
 */
export function heapView(backend: KernelBackend, info: TensorInfo): Float32Array {
  return (backend as unknown as WasmHeapBackend).typedArrayFromHeap(info);
}
