import type * as tfl from '@tensorflow/tfjs-layers';

export interface LayerSummary {
  name: string;
  className: string;
  /** Output shape with the batch dimension as null, e.g. [null, 28, 28, 256]. */
  outputShape: (number | null)[] | (number | null)[][];
  params: number;
}

export interface ModelSummary {
  /** Trainable parameters. */
  params: number;
  nonTrainableParams: number;
  layers: LayerSummary[];
  /** Parameters per block (`conv1`, `inception3a`, `loss1`, ...): the part of a layer name before '/'. */
  blocks: Record<string, number>;
}

function count(weights: tfl.LayerVariable[]): number {
  return weights.reduce((sum, w) => sum + w.shape.reduce<number>((p, d) => p * (d ?? 1), 1), 0);
}

/** Per-layer and per-block parameter counts of a model. */
export function summarizeModel(model: tfl.LayersModel): ModelSummary {
  const layers = model.layers.map((layer) => ({
    name: layer.name,
    className: layer.getClassName(),
    outputShape: layer.outputShape as LayerSummary['outputShape'],
    params: layer.countParams(),
  }));
  const blocks: Record<string, number> = {};
  for (const layer of layers) {
    if (layer.params === 0) continue;
    const block = layer.name.split('/')[0] ?? layer.name;
    blocks[block] = (blocks[block] ?? 0) + layer.params;
  }
  return {
    params: count(model.trainableWeights),
    nonTrainableParams: count(model.nonTrainableWeights),
    layers,
    blocks,
  };
}

/** The summary as an aligned text table with totals. */
export function formatSummary(summary: ModelSummary): string {
  const shape = (s: LayerSummary['outputShape']): string => JSON.stringify(s).replace(/null/g, 'N');
  const rows = summary.layers.map((l) => [
    l.name,
    l.className,
    shape(l.outputShape),
    l.params.toLocaleString('en-US'),
  ]);
  const header = ['layer', 'type', 'output shape', 'params'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ');
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  return [
    line(header),
    rule,
    ...rows.map(line),
    rule,
    `trainable params: ${summary.params.toLocaleString('en-US')}`,
    `non-trainable params: ${summary.nonTrainableParams.toLocaleString('en-US')}`,
  ].join('\n');
}
