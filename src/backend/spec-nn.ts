/**
 * The kernel spec's entries for the nn ops (softmax, losses, convolution and pooling, normalisation), spread into
 * `KERNELS` in spec.ts, where the argument kinds and the rest of the table are documented and checked.
 */
export const NN_KERNELS = {
  /** Row-wise softmax (log = false) or log-softmax (log = true) of a rows×cols matrix. */
  softmax: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
      ['log', 'bool'],
    ],
    c: 'gg_softmax',
  },
  /** Gradient of softmax (y = softmax) or log-softmax (y = log-softmax) given y and gy. */
  softmaxGrad: {
    args: [
      ['y', 'buf'],
      ['gy', 'buf'],
      ['gx', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
      ['log', 'bool'],
    ],
    c: 'gg_softmax_grad',
  },
  /**
   * Cross-entropy with class indices and label smoothing ε, per row r:
   * loss[r] = -(1-ε)·logp[r, t_r] - (ε/cols)·Σ_c logp[r, c], or 0 when t_r = ignoreIndex.
   * Writes probs = softmax(x) (kept for the gradient) and loss per row.
   */
  crossEntropy: {
    args: [
      ['x', 'buf'],
      ['targets', 'buf'],
      ['probs', 'buf'],
      ['loss', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
      ['smoothing', 'f64'],
      ['ignoreIndex', 'f64'],
    ],
    c: 'gg_cross_entropy',
  },
  /** gx[r, c] = scale[r] · (probs[r, c] - (1-ε)·[c = t_r] - ε/cols); rows with t_r = ignoreIndex get 0. */
  crossEntropyGrad: {
    args: [
      ['probs', 'buf'],
      ['targets', 'buf'],
      ['scale', 'buf'],
      ['gx', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
      ['smoothing', 'f64'],
      ['ignoreIndex', 'f64'],
    ],
    c: 'gg_cross_entropy_grad',
  },
  /**
   * im2col for a batch of N images read from x[xOff..] (N×C×H×W there); cols is (C·kh·kw) × (N·oh·ow), row (c, i, j),
   * column (n, y, x); padding reads as 0. conv2d calls it per image (N = 1), so that the columns stay in cache.
   */
  im2col: {
    args: [
      ['x', 'buf'],
      ['xOff', 'int'],
      ['cols', 'buf'],
      ['g', 'conv'],
    ],
    c: 'gg_im2col',
  },
  /**
   * The adjoint of im2col: dx[dxOff..] (N×C×H×W there) = sum of cols into the positions they were read from.
   * Overwrites those N·C·H·W values of dx.
   */
  col2im: {
    args: [
      ['cols', 'buf'],
      ['dx', 'buf'],
      ['dxOff', 'int'],
      ['g', 'conv'],
    ],
    c: 'gg_col2im',
  },
  /**
   * The whole convolution of a batch (conv2d's forward): out[N, oc, oh·ow] (+)= weight[oc, c·kh·kw] · columns, group by
   * group (g is one group's geometry: g.c its input channels, g.n the images; weight row o of group o / (oc/groups)
   * sees that group's channels of x[N, c·groups, h, w]); accumulate keeps out's contents (a bias) and adds to them.
   * The reference unfolds image by image (im2col) and multiplies with sgemm; the native kernel gives whole images to
   * its threads (3×3 convolutions with stride 1, padding 1 and 16+ channels in and out, as a ResNet's, by Winograd's
   * F(2×2, 3×3) on x86-64 with AVX-512, native/kernels/conv_wino.c: a float32 rounding of its own, within the same
   * bound of the reference as the direct sums; its input and weight gradients too). Natively only (the wasm backend
   * composes its im2col and sgemm as the reference does); the C
   * function returns 0, having done nothing, where it cannot run (no sgemm of its own, OpenBLAS pinned), and the
   * native backend then runs the reference's composition.
   */
  conv2d: {
    args: [
      ['x', 'buf'],
      ['weight', 'buf'],
      ['out', 'buf'],
      ['g', 'conv'],
      ['oc', 'int'],
      ['groups', 'int'],
      ['accumulate', 'bool'],
    ],
    c: 'gg_conv2d',
    cRet: 'num',
    wasm: false,
  },
  /**
   * conv2d with a bias [oc]: out[N, oc, oh·ow] = bias (broadcast along each row, plus 0: -0 becomes +0) + weight ·
   * columns, the same values as a binary broadcast of the bias into out followed by conv2d accumulating. The native
   * kernel writes each image's bias where its product then adds, in cache, instead of a pass over the whole batch's
   * output before the convolution. With relu, each image's rows then go through the ReLU (v <= 0 ? 0 : v, NaN stays
   * NaN: unary's Relu), in cache, instead of a pass over the batch's output after it (conv2dRelu, nn.Sequential's
   * Conv2d + ReLU). Natively only, as conv2d (0: not run, the native backend composes).
   */
  conv2dBias: {
    args: [
      ['x', 'buf'],
      ['weight', 'buf'],
      ['bias', 'buf'],
      ['out', 'buf'],
      ['g', 'conv'],
      ['oc', 'int'],
      ['groups', 'int'],
      ['relu', 'bool'],
    ],
    c: 'gg_conv2d_bias',
    cRet: 'num',
    wasm: false,
  },
  /** conv2d's input gradient: gx = the columns' gradient weightᵀ · gy, folded back (col2im). Overwrites gx. */
  conv2dGradInput: {
    args: [
      ['gy', 'buf'],
      ['weight', 'buf'],
      ['gx', 'buf'],
      ['g', 'conv'],
      ['oc', 'int'],
      ['groups', 'int'],
    ],
    c: 'gg_conv2d_grad_input',
    cRet: 'num',
    wasm: false,
  },
  /**
   * conv2d's weight gradient: gw = Σ over the images of gy_i · columns_iᵀ. Overwrites gw. The reference accumulates
   * image by image; the native kernel sums blocks of images (fixed by N, not by the threads) and then the blocks'
   * partials in float64, so the two agree to rounding and the native bits do not depend on the thread count.
   */
  conv2dGradWeight: {
    args: [
      ['x', 'buf'],
      ['gy', 'buf'],
      ['gw', 'buf'],
      ['g', 'conv'],
      ['oc', 'int'],
      ['groups', 'int'],
    ],
    c: 'gg_conv2d_grad_weight',
    cRet: 'num',
    wasm: false,
  },
  /**
   * nn.Linear's forward with its bias, and nn.ReLU's after it where `relu`: out[rows, outF] = x[rows, inF] · w[outF,
   * inF]ᵀ + bias (broadcast over the rows), then x <= 0 ? 0 : x. The reference broadcasts the bias into out, adds the
   * product with sgemm (beta 1), then applies `unary` Relu in place; natively, where our sgemm computes the shape, the
   * bias is added and the ReLU applied as the product's output is stored (the same bits), and the C function returns
   * 0, having done nothing, where OpenBLAS computes it (the native backend then composes as the reference does).
   * Natively only (the wasm backend composes its kernels).
   */
  linearBias: {
    args: [
      ['x', 'buf'],
      ['w', 'buf'],
      ['bias', 'buf'],
      ['out', 'buf'],
      ['rows', 'int'],
      ['inF', 'int'],
      ['outF', 'int'],
      ['relu', 'bool'],
    ],
    c: 'gg_linear_bias',
    cRet: 'num',
    wasm: false,
  },
  /**
   * The first pass of linearBias's backward with a ReLU: gx = y > 0 ? gy : 0 (y the ReLU's output), and gb = the
   * column sums of gx [rows, cols], in one pass; the bits of `unaryGrad` Relu and then `sumAxis(gx, gb, 1, rows,
   * cols)`, which the reference composes. Natively only (the wasm backend composes its kernels).
   */
  reluBiasGrad: {
    args: [
      ['gy', 'buf'],
      ['y', 'buf'],
      ['gx', 'buf'],
      ['gb', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
    ],
    c: 'gg_relu_bias_grad',
    wasm: false,
  },
  /** Max pooling over N·C planes; padding never wins. */
  maxPool2d: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['g', 'pool'],
    ],
    c: 'gg_max_pool2d',
  },
  /**
   * maxPool2d, and the statistics sumSquaresRows(x, sums, planes, h·w) takes of its input (each plane's sum into
   * sums [planes]; the result is Σx²), with sumSquaresRows' bits: natively in the pooling's pass (the monitor's
   * figures of a convolution's ReLU output that a max pooling reads, without a pass of their own), elsewhere the two
   * kernels one after the other.
   */
  maxPool2dSums: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['sums', 'buf'],
      ['g', 'pool'],
    ],
    ret: 'num',
    c: 'gg_max_pool2d_sums',
    wasm: false,
  },
  /** Gradient of max pooling; the first maximum in a window takes the gradient (as PyTorch). Overwrites dx. */
  maxPool2dGrad: {
    args: [
      ['x', 'buf'],
      ['gy', 'buf'],
      ['dx', 'buf'],
      ['g', 'pool'],
    ],
    c: 'gg_max_pool2d_grad',
  },
  /**
   * maxPool2dGrad where x is a ReLU's output, with the ReLU's gradient folded in: dx is the gradient of the ReLU's
   * input, 0 wherever x is not > 0 (x > 0 exactly where the ReLU's input is). The same values as maxPool2dGrad
   * followed by the ReLU's unaryGrad, in one pass. Overwrites dx, and writes each plane's sum of dx into sums
   * [planes], as sumAxis(dx, sums, planes, h·w, 1) sums them (bit for bit): a convolution's bias gradient per image,
   * where the ReLU's input is a conv2d's output.
   */
  maxPool2dGradRelu: {
    args: [
      ['x', 'buf'],
      ['gy', 'buf'],
      ['dx', 'buf'],
      ['sums', 'buf'],
      ['g', 'pool'],
    ],
    c: 'gg_max_pool2d_grad_relu',
  },
  /** Average pooling; the divisor counts padding when `countIncludePad` (PyTorch's default). */
  avgPool2d: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['g', 'pool'],
      ['countIncludePad', 'bool'],
    ],
    c: 'gg_avg_pool2d',
  },
  /** Gradient of average pooling. Overwrites dx. */
  avgPool2dGrad: {
    args: [
      ['gy', 'buf'],
      ['dx', 'buf'],
      ['g', 'pool'],
      ['countIncludePad', 'bool'],
    ],
    c: 'gg_avg_pool2d_grad',
  },
  /**
   * Batch normalisation forward over x [n, c, inner] per channel (weight and bias [c]; pass ones and zeros for
   * none). Training (`training`): the batch mean and biased variance normalise, computed in float64, and are saved
   * as mean and invstd = 1/sqrt(var + eps) [c]; with `updateRunning` the running statistics [c] are updated in place,
   * r ← (1 − momentum)·r + momentum·batch, with the unbiased variance (as PyTorch). Evaluation: the running
   * statistics normalise (and are saved the same way). out = x·(invstd·w) + (b − mean·invstd·w), per channel.
   */
  batchNorm: {
    args: [
      ['x', 'buf'],
      ['weight', 'buf'],
      ['bias', 'buf'],
      ['runningMean', 'buf'],
      ['runningVar', 'buf'],
      ['mean', 'buf'],
      ['invstd', 'buf'],
      ['out', 'buf'],
      ['n', 'int'],
      ['c', 'int'],
      ['inner', 'int'],
      ['training', 'bool'],
      ['updateRunning', 'bool'],
      ['momentum', 'f64'],
      ['eps', 'f64'],
    ],
    c: 'gg_batch_norm',
  },
  /**
   * Batch normalisation backward, given the saved mean and invstd: gb[ch] = Σ gy and gw[ch] = Σ gy·x̂ (float64 sums
   * over batch and positions, rounded once), and gx = w·invstd·(gy − gb/m − x̂·gw/m) in training (m = n·inner), or
   * w·invstd·gy in evaluation.
   */
  batchNormGrad: {
    args: [
      ['x', 'buf'],
      ['gy', 'buf'],
      ['weight', 'buf'],
      ['mean', 'buf'],
      ['invstd', 'buf'],
      ['gx', 'buf'],
      ['gw', 'buf'],
      ['gb', 'buf'],
      ['n', 'int'],
      ['c', 'int'],
      ['inner', 'int'],
      ['training', 'bool'],
    ],
    c: 'gg_batch_norm_grad',
  },
  /**
   * BatchNorm followed by a ReLU, forward: `batchNorm`'s statistics and output, then max(·, 0) applied to it as
   * `unary` Relu does (NaN stays NaN, -0 gives +0), in the same pass; the same bits as the two kernels.
   */
  batchNormRelu: {
    args: [
      ['x', 'buf'],
      ['weight', 'buf'],
      ['bias', 'buf'],
      ['runningMean', 'buf'],
      ['runningVar', 'buf'],
      ['mean', 'buf'],
      ['invstd', 'buf'],
      ['out', 'buf'],
      ['n', 'int'],
      ['c', 'int'],
      ['inner', 'int'],
      ['training', 'bool'],
      ['updateRunning', 'bool'],
      ['momentum', 'f64'],
      ['eps', 'f64'],
    ],
    c: 'gg_batch_norm_relu',
  },
  /**
   * The backward of `batchNormRelu`: `batchNormGrad` of the ReLU's gradient, gy where y > 0 and 0 elsewhere (y the
   * ReLU's output, > 0 exactly where its input was), that mask applied inside the sums and the output pass; the same
   * bits as `unaryGrad` Relu then `batchNormGrad`. x is BatchNorm's input.
   */
  batchNormReluGrad: {
    args: [
      ['x', 'buf'],
      ['gy', 'buf'],
      ['y', 'buf'],
      ['weight', 'buf'],
      ['mean', 'buf'],
      ['invstd', 'buf'],
      ['gx', 'buf'],
      ['gw', 'buf'],
      ['gb', 'buf'],
      ['n', 'int'],
      ['c', 'int'],
      ['inner', 'int'],
      ['training', 'bool'],
    ],
    c: 'gg_batch_norm_relu_grad',
  },
  /**
   * Layer normalisation forward over rows of x [rows, d]: per row the mean and biased variance (float64), saved as
   * mean and rstd = 1/sqrt(var + eps) [rows]; out = (x − mean)·rstd·w + b with w, b [d] (pass ones and zeros for none).
   */
  layerNorm: {
    args: [
      ['x', 'buf'],
      ['weight', 'buf'],
      ['bias', 'buf'],
      ['mean', 'buf'],
      ['rstd', 'buf'],
      ['out', 'buf'],
      ['rows', 'int'],
      ['d', 'int'],
      ['eps', 'f64'],
    ],
    c: 'gg_layer_norm',
  },
  /**
   * Layer normalisation backward: gw[i] = Σ_rows gy·x̂ and gb[i] = Σ_rows gy (float64, rows in order, rounded once);
   * gx = rstd·(ĝ − Σĝ/d − x̂·Σĝx̂/d) per row with ĝ = gy·w.
   */
  layerNormGrad: {
    args: [
      ['x', 'buf'],
      ['gy', 'buf'],
      ['weight', 'buf'],
      ['mean', 'buf'],
      ['rstd', 'buf'],
      ['gx', 'buf'],
      ['gw', 'buf'],
      ['gb', 'buf'],
      ['rows', 'int'],
      ['d', 'int'],
    ],
    c: 'gg_layer_norm_grad',
  },
  /** Negative log-likelihood per row: loss[r] = −x[r, t_r], or 0 where t_r = ignoreIndex. */
  nllLoss: {
    args: [
      ['x', 'buf'],
      ['targets', 'buf'],
      ['loss', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
      ['ignoreIndex', 'f64'],
    ],
    c: null,
  },
  /** gx = 0 except gx[r, t_r] = −scale[r] (rows with t_r = ignoreIndex stay 0). */
  nllLossGrad: {
    args: [
      ['targets', 'buf'],
      ['scale', 'buf'],
      ['gx', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
      ['ignoreIndex', 'f64'],
    ],
    c: null,
  },
  /**
   * Binary cross-entropy on logits with positive weights w (ones for none), stable for any x:
   * out = (1 − y)·x + (1 + (w − 1)·y)·log(1 + e^(−x)), over n elements.
   */
  bceWithLogits: {
    args: [
      ['x', 'buf'],
      ['target', 'buf'],
      ['posWeight', 'buf'],
      ['out', 'buf'],
      ['n', 'int'],
    ],
    c: null,
  },
  /** Its gradients: gx = g·((1 − y) − (1 + (w − 1)·y)·(1 − σ(x))), gTarget = g·(−x + (w − 1)·log(1 + e^(−x))). */
  bceWithLogitsGrad: {
    args: [
      ['x', 'buf'],
      ['target', 'buf'],
      ['posWeight', 'buf'],
      ['g', 'buf'],
      ['gx', 'buf'],
      ['gTarget', 'buf'],
      ['n', 'int'],
    ],
    c: null,
  },
  /**
   * Adaptive average pooling of `planes` planes h×w to oh×ow, PyTorch's windows: output row i averages input rows
   * floor(i·h/oh) to ceil((i+1)·h/oh), the same for columns.
   */
  adaptiveAvgPool2d: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['planes', 'int'],
      ['h', 'int'],
      ['w', 'int'],
      ['oh', 'int'],
      ['ow', 'int'],
    ],
    c: null,
  },
  /** Its gradient: each output cell's gradient spread evenly over its window. Overwrites dx. */
  adaptiveAvgPool2dGrad: {
    args: [
      ['gy', 'buf'],
      ['dx', 'buf'],
      ['planes', 'int'],
      ['h', 'int'],
      ['w', 'int'],
      ['oh', 'int'],
      ['ow', 'int'],
    ],
    c: null,
  },
} as const;
