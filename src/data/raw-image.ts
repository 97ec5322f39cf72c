import { UnrecoverableRunError } from '../spec/unrecoverable-run-error.js';

/** Decoded pixels as data sets hand them out, before resizing and normalisation. */
export interface RawImage {
  /** HWC bytes, 0..255. */
  data: Uint8Array;
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
}

/**
 * A labelled image collection of one split: labels known up front (they decide the splits and
 * the class checks), pixels read on demand.
 */
export interface ImageSource {
  /** Class names, index = label. */
  readonly classes: string[];
  readonly labels: Int32Array;
  read(index: number): Promise<RawImage>;
}

/** A data set file or folder that is not what its format says (a run fed it cannot retry). */
export class DatasetError extends UnrecoverableRunError {
  override name = 'DatasetError';
}
