/**
 * npm run model:summary -- --classes N --input S [--channels C] [--width W] [--aux]
 *                          [--norm none|batchnorm|lrn] [--json]
 *
 * Prints GoogLeNet's layers (name, type, output shape, parameters) and totals. With --json the
 * last line is one JSON object: { params, nonTrainableParams, layers: [...], blocks: {...}, config }.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadBackend } from './backend.js';
import { googLeNetConfigSchema } from '../spec/googlenet-config.js';
import { createGoogLeNet } from './googlenet.js';
import { formatSummary, summarizeModel } from './summary.js';

function fail(message: string): never {
  process.stderr.write(`model:summary: ${message}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      classes: { type: 'string' },
      input: { type: 'string', default: '224' },
      channels: { type: 'string', default: '3' },
      width: { type: 'string', default: '1' },
      aux: { type: 'boolean', default: false },
      norm: { type: 'string', default: 'none' },
      json: { type: 'boolean', default: false },
    },
  }));
} catch (error) {
  fail((error as Error).message);
}
if (values.classes === undefined) fail('--classes N is required');

const parsed = googLeNetConfigSchema.safeParse({
  numClasses: Number(values.classes),
  inputSize: Number(values.input),
  channels: Number(values.channels),
  width: Number(values.width),
  auxLogits: values.aux,
  norm: values.norm,
});
if (!parsed.success) fail(z.prettifyError(parsed.error));

// Building a model initialises weights, which needs a backend; the pure-JS one always loads.
await loadBackend({ backend: 'cpu' });
const model = createGoogLeNet(parsed.data);
const summary = summarizeModel(model);
process.stdout.write(`${formatSummary(summary)}\n`);
if (values.json) process.stdout.write(`${JSON.stringify({ ...summary, config: parsed.data })}\n`);
