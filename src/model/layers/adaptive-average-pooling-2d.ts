import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export interface AdaptiveAveragePooling2DArgs {
  /** Output side (square). */
  outputSize: number;
  name?: string;
}

/**
 * Averages an NHWC map into `outputSize` x `outputSize` bins, bin i covering rows
 * [floor(i*H/S), ceil((i+1)*H/S)) — the same bins as PyTorch's adaptive_avg_pool2d.
 *
 * Why: GoogLeNet's auxiliary heads pool the 4a/4d maps 5x5/3 to 4x4 (at 224 the map is 14x14).
 * At 32x32 input the map is 2x2 and a 5x5 pool cannot run, so for any map size other than the
 * paper's the head pools adaptively to the same 4x4, which keeps its fully connected layer (and
 * the parameter count) independent of the input size. Implemented as two small matrix products
 * so every backend, including wasm, has the kernels and gradients it needs.
 */
export class AdaptiveAveragePooling2D extends tfl.layers.Layer {
  static readonly className = 'AdaptiveAveragePooling2D';
  readonly outputSize: number;

  constructor(args: AdaptiveAveragePooling2DArgs) {
    super(args.name === undefined ? {} : { name: args.name });
    this.outputSize = args.outputSize;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [shape[0] ?? null, this.outputSize, this.outputSize, shape[3] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const [n, h, w, c] = x.shape;
      const rows = poolingMatrix(h, this.outputSize); // [S, H]
      const cols = poolingMatrix(w, this.outputSize); // [S, W]
      // Pool rows: [S,H] x [H, N*W*C]
      const byRow = tf.matMul(rows, tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, n * w * c]));
      // -> [W, N*S*C], pool columns: [S,W] x [W, N*S*C]
      const rowsFirst = tf.reshape(byRow, [this.outputSize, n, w, c]);
      const byCol = tf.matMul(
        cols,
        tf.reshape(tf.transpose(rowsFirst, [2, 1, 0, 3]), [w, n * this.outputSize * c]),
      );
      // [S(col), N, S(row), C] -> [N, S(row), S(col), C]
      return tf.transpose(
        tf.reshape(byCol, [this.outputSize, n, this.outputSize, c]),
        [1, 2, 0, 3],
      );
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), outputSize: this.outputSize };
  }
}

/** Row i averages input positions [floor(i*size/out), ceil((i+1)*size/out)). */
function poolingMatrix(size: number, out: number): tf.Tensor2D {
  const values = new Float32Array(out * size);
  for (let i = 0; i < out; i++) {
    const start = Math.floor((i * size) / out);
    const end = Math.ceil(((i + 1) * size) / out);
    for (let j = start; j < end; j++) values[i * size + j] = 1 / (end - start);
  }
  return tf.tensor2d(values, [out, size]);
}

tf.serialization.registerClass(AdaptiveAveragePooling2D);
