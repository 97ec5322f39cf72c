/**
 * The running totals of one evaluation: the confusion matrix, the summed loss and the top-5 hits
 * over the batches seen so far, and the figures derived from them.
 */
import type { EvalResult } from '../../spec/run-results.js';
import type { MetricPointMessage } from '../ipc.js';

/** What the network made of one batch: its summed loss, top-5 hits and top-1 predictions. */
export interface BatchScore {
  loss: number;
  top5Hits: number;
  /** The predicted class of each image, in the batch's order. */
  predicted: ArrayLike<number>;
}

/** Accumulates batch scores into the running `eval/*` figures and the final {@link EvalResult}. */
export class EvalTally {
  /** Rows: true class; columns: predicted class. */
  readonly confusion: number[][];
  /** Images scored. */
  count = 0;
  /** Batches scored: the step of the running metric series. */
  batches = 0;
  private lossSum = 0;
  private top5Hits = 0;

  constructor(numClasses: number) {
    this.confusion = Array.from({ length: numClasses }, () =>
      new Array<number>(numClasses).fill(0),
    );
  }

  /** Adds one batch whose true classes are `labels`. */
  add(labels: Int32Array, count: number, score: BatchScore): void {
    for (let i = 0; i < count; i++) {
      const row = this.confusion[labels[i] as number] as number[];
      const p = score.predicted[i] as number;
      row[p] = (row[p] as number) + 1;
    }
    this.count += count;
    this.lossSum += score.loss;
    this.top5Hits += score.top5Hits;
    this.batches += 1;
  }

  /** The running loss, top-1 and top-5 so far, as metric points at step `batches`. */
  runningPoints(time: number): MetricPointMessage[] {
    const step = this.batches;
    return [
      { name: 'eval/loss', step, value: this.lossSum / this.count, time },
      { name: 'eval/top1', step, value: this.correct() / this.count, time },
      { name: 'eval/top5', step, value: this.top5Hits / this.count, time },
    ];
  }

  /** The evaluation's result; `classes` names the confusion matrix's rows (index if missing). */
  result(classes: readonly string[], backend: string): EvalResult {
    const { confusion, count } = this;
    return {
      top1: this.correct() / count,
      top5: this.top5Hits / count,
      loss: this.lossSum / count,
      count,
      perClass: confusion.map((row, c) => {
        const truePositives = row[c] as number;
        const actual = row.reduce((a, b) => a + b, 0);
        const predictedAs = confusion.reduce((sum, r) => sum + (r[c] as number), 0);
        return {
          label: classes[c] ?? String(c),
          precision: predictedAs > 0 ? truePositives / predictedAs : null,
          recall: actual > 0 ? truePositives / actual : null,
          count: actual,
        };
      }),
      confusionMatrix: confusion,
      backend,
    };
  }

  /** Images whose top-1 prediction was their true class: the matrix's diagonal. */
  private correct(): number {
    return this.confusion.reduce((sum, row, c) => sum + (row[c] as number), 0);
  }
}
