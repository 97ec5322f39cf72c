/**
 * The compute backends, fastest first. Apart from backend.ts so that config parsing can name
 * them without loading TensorFlow.js (the API and db:migrate never train).
 */
export const BACKEND_NAMES = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export type BackendPreference = BackendName | 'auto';
