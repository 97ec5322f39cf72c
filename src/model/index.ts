/** GoogLeNet as a pure library: graph, backends, training step, optimizers, schedules, summary. */
export * from './backend.js';
export * from './googlenet.js';
export * from '../spec/googlenet-config.js';
export * from './layer-variables.js';
export * from './lr-schedule.js';
export * from './optimizer.js';
export * from './summary.js';
export * from './train-step.js';
