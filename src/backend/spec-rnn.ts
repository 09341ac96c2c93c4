/**
 * The kernel spec's entries for the recurrent layers (the LSTM's and the GRU's steps, and their loops over time), spread
 * into `KERNELS` in spec.ts, where the argument kinds and the rest of the table are documented and checked. The
 * reference is js-rnn.ts; the C, native/kernels/recurrent.c (the steps) and recurrent_seq.c (the loops).
 */
export const RNN_KERNELS = {
  /**
   * One LSTM step over hidden×batch states (stored transposed, element (j, b) at j·batch + b), gates i, f, g, o:
   * the pre-activations of gate q are p[pOff + (q·hidden + j)·ldp + b]; act receives i = σ, f = σ, g = tanh, o = σ
   * (gate q at q·hidden·batch), c = f·cPrev + i·g (each product and the sum rounded to float32), tc = tanh(c), and
   * h = o·tc is stored at h[hOff + j·ldh + b] and, as the layer's output, at y[yOff + b·ldy + j] (ldy = hidden for a
   * time-major output [seq, batch, hidden], seq·hidden for a batch-first one).
   */
  lstmCell: {
    args: [
      ['p', 'buf'],
      ['pOff', 'int'],
      ['ldp', 'int'],
      ['cPrev', 'buf'],
      ['act', 'buf'],
      ['c', 'buf'],
      ['tc', 'buf'],
      ['h', 'buf'],
      ['hOff', 'int'],
      ['ldh', 'int'],
      ['y', 'buf'],
      ['yOff', 'int'],
      ['ldy', 'int'],
      ['hidden', 'int'],
      ['batch', 'int'],
    ],
    c: 'gg_lstm_cell',
  },
  /**
   * Its backward: from dh (reaching h from the next step) plus dy, the gradient of the layer's output at this step
   * (element (j, b) at dy[dyOff + b·ldy + j], as lstmCell's y; their float32 sum is stored back into dh), and dc
   * (reaching c from the next step), with the step's act, cPrev and tc: the pre-activations' gradients, gate q's
   * stored at dG[dOff + (q·hidden + j)·ldg + b], and dcPrev = dc_total·f. Products and sums round to float32 as the
   * separate kernels did (mul, then unaryGrad's float64 g·f'(y)).
   */
  lstmCellGrad: {
    args: [
      ['act', 'buf'],
      ['cPrev', 'buf'],
      ['tc', 'buf'],
      ['dh', 'buf'],
      ['dy', 'buf'],
      ['dyOff', 'int'],
      ['ldy', 'int'],
      ['dc', 'buf'],
      ['dG', 'buf'],
      ['dOff', 'int'],
      ['ldg', 'int'],
      ['dcPrev', 'buf'],
      ['hidden', 'int'],
      ['batch', 'int'],
    ],
    c: 'gg_lstm_cell_grad',
  },
  /**
   * One GRU step over hidden×batch states (element (j, b) at j·batch + b), gates r, z, n: the pre-activations of r
   * and z (W_i·x + b_i + W_h·h_prev + b_h) are p[pOff + (q·hidden + j)·ldp + b] for q = 0, 1, n's input part
   * (W_in·x + b_in) is row 2·hidden + j there; hn = W_hn·h_prev + b_hn. act receives r = σ, z = σ and
   * nn = tanh(n_in + r·hn) (gate q at q·hidden·batch); h = z·(h_prev − nn) + nn, each operation rounded to float32,
   * reading h_prev at hPrev[hpOff + j·ldh + b] and storing h at h[hOff + j·ldh + b] and, as the layer's output, at
   * y[yOff + b·ldy + j] (as lstmCell's).
   */
  gruCell: {
    args: [
      ['p', 'buf'],
      ['pOff', 'int'],
      ['ldp', 'int'],
      ['hn', 'buf'],
      ['hPrev', 'buf'],
      ['hpOff', 'int'],
      ['h', 'buf'],
      ['hOff', 'int'],
      ['ldh', 'int'],
      ['y', 'buf'],
      ['yOff', 'int'],
      ['ldy', 'int'],
      ['act', 'buf'],
      ['hidden', 'int'],
      ['batch', 'int'],
    ],
    c: 'gg_gru_cell',
  },
  /**
   * Its backward from dh (reaching h from the next step) plus dy, the gradient of the layer's output at this step
   * (element (j, b) at dy[dyOff + b·ldy + j]; their float32 sum is stored back into dh): the gradients of r's and
   * z's pre-activations, of n's and of hn (rows q·hidden + j for q = 0..3) stored at dG[dOff + row·ldg + b], and
   * dhPrev = dh·z, the direct path (the caller adds W_hᵀ·dG).
   */
  gruCellGrad: {
    args: [
      ['act', 'buf'],
      ['hn', 'buf'],
      ['hPrev', 'buf'],
      ['hpOff', 'int'],
      ['ldh', 'int'],
      ['dh', 'buf'],
      ['dy', 'buf'],
      ['dyOff', 'int'],
      ['ldy', 'int'],
      ['dG', 'buf'],
      ['dOff', 'int'],
      ['ldg', 'int'],
      ['dhPrev', 'buf'],
      ['hidden', 'int'],
      ['batch', 'int'],
    ],
    c: 'gg_gru_cell_grad',
  },
  /**
   * An LSTM layer's loop over `steps` time steps (one direction), as the op ran it step by step: for t = 0, 1, …,
   * first x_t (`batch` rows of `inputs` values, ldx apart, from x's t·xStep) transposed into z's rows [hidden,
   * hidden + inputs), column block t (the values only moved), then p = w·z's column block t (sgemm, no transposes: w [4·hidden, k], z [k, ·] of row length ldz, block t at column
   * t·batch; alpha 1, beta 0), then lstmCell(p, 0, batch, c_t, act_t, c_{t+1}, tc_t, z, (t + 1)·batch, ldz, y,
   * t·yStep, ldy, hidden, batch): h_t goes into z's block t + 1, where the next product reads it. With `keep`, step
   * t's act [4, hidden, batch] and tc [hidden, batch] are blocks t of act and tc, and c_t block t of c (c_0 in block
   * 0, given; [steps + 1, hidden, batch]); without, act and tc hold one block and c_t is block t mod 2 of c. p
   * [4·hidden, batch] is scratch.
   */
  lstmSeq: {
    args: [
      ['w', 'buf'],
      ['k', 'int'],
      ['z', 'buf'],
      ['ldz', 'int'],
      ['x', 'buf'],
      ['xStep', 'int'],
      ['ldx', 'int'],
      ['inputs', 'int'],
      ['p', 'buf'],
      ['c', 'buf'],
      ['act', 'buf'],
      ['tc', 'buf'],
      ['y', 'buf'],
      ['yStep', 'int'],
      ['ldy', 'int'],
      ['keep', 'bool'],
      ['steps', 'int'],
      ['hidden', 'int'],
      ['batch', 'int'],
    ],
    c: 'gg_lstm_seq',
  },
  /**
   * Its backward, as the op ran it: for t = steps − 1 down to 0, lstmCellGrad(act_t, c_t, tc_t, dh_cur, dy,
   * t·yStep, ldy, dc_cur, dG, t·batch, ldg, dc_next, hidden, batch) with lstmSeq's kept blocks, then dh_next =
   * whhᵀ·dG's column block t (sgemm: whh [4·hidden, hidden] transposed, alpha 1, beta 0), cur and next then swapping.
   * dh and dc hold two [hidden, batch] blocks: block 0 gives the gradients reaching h and c after the last step (dh
   * zeros, dc c_T's); on return block 0 holds those reaching h_0 and c_0. With `measure`, dhss[t] = the sum of squares of
   * dh_cur after step t's lstmCellGrad (the whole gradient reaching h_t; `sumSquares`' float64 sum rounded to float32)
   * for the through-time record; without, dhss is not touched.
   */
  lstmSeqGrad: {
    args: [
      ['whh', 'buf'],
      ['act', 'buf'],
      ['c', 'buf'],
      ['tc', 'buf'],
      ['dh', 'buf'],
      ['dy', 'buf'],
      ['yStep', 'int'],
      ['ldy', 'int'],
      ['dc', 'buf'],
      ['dG', 'buf'],
      ['ldg', 'int'],
      ['dhss', 'buf'],
      ['measure', 'bool'],
      ['steps', 'int'],
      ['hidden', 'int'],
      ['batch', 'int'],
    ],
    c: 'gg_lstm_seq_grad',
  },
  /**
   * A GRU layer's loop over `steps` time steps, as the op ran it: for t = 0, 1, …, x_t transposed into z's rows
   * [nb + hidden, nb + hidden + inputs), column block t, as lstmSeq's, then three products from z's column block t
   * (sgemm, alpha 1, beta 0; w [4·hidden, k] as the op stacks it; z [k + nb, ·] holds [1; h; x; 1], the
   * rows of ones where nb = 1, so h_{t−1} from row nb): p's rows [0, 2·hidden) = w's rows [0, 2·hidden)·z's k rows
   * from row nb; p's rows [2·hidden, 3·hidden) = w's rows [2·hidden, 3·hidden) from column hidden on·z's rows from
   * nb + hidden on (k − hidden of them); hn_t = w's rows [3·hidden, 4·hidden), columns [0, hidden + nb)·z's first
   * hidden + nb rows; then gruCell(p, 0, batch, hn_t, z, nb·ldz + t·batch, z, nb·ldz + (t + 1)·batch, ldz, y,
   * t·yStep, ldy, act_t, hidden, batch). With `keep`, hn_t and act_t ([3, hidden, batch]) are blocks t of hn and act,
   * else both hold one block. p [3·hidden, batch] is scratch.
   */
  gruSeq: {
    args: [
      ['w', 'buf'],
      ['k', 'int'],
      ['nb', 'int'],
      ['z', 'buf'],
      ['ldz', 'int'],
      ['x', 'buf'],
      ['xStep', 'int'],
      ['ldx', 'int'],
      ['inputs', 'int'],
      ['p', 'buf'],
      ['hn', 'buf'],
      ['act', 'buf'],
      ['y', 'buf'],
      ['yStep', 'int'],
      ['ldy', 'int'],
      ['keep', 'bool'],
      ['steps', 'int'],
      ['hidden', 'int'],
      ['batch', 'int'],
    ],
    c: 'gg_gru_seq',
  },
  /**
   * Its backward, as the op ran it: for t = steps − 1 down to 0, gruCellGrad(act_t, hn_t, z, zOff + t·batch, ldz,
   * dh_cur, dy, t·yStep, ldy, dG, t·batch, ldg, dh_next, hidden, batch) (h_{t−1} at z's zOff + t·batch: gruSeq's z
   * from row nb), then dh_next += whh's rows [0, 2·hidden)ᵀ·dG's rows [0, 2·hidden) and += whh's rows [2·hidden,
   * 3·hidden)ᵀ·dG's rows [3·hidden, 4·hidden), both in column block t (sgemm, alpha 1, beta 1), cur and next then
   * swapping. dh holds two [hidden, batch] blocks: block 0 gives the
   * gradient reaching h after the last step; on return block 0 holds the one reaching h_0. With `measure`, dhss[t] = the sum of
   * squares of dh_cur after step t's gruCellGrad, as lstmSeqGrad's.
   */
  gruSeqGrad: {
    args: [
      ['whh', 'buf'],
      ['act', 'buf'],
      ['hn', 'buf'],
      ['z', 'buf'],
      ['zOff', 'int'],
      ['ldz', 'int'],
      ['dh', 'buf'],
      ['dy', 'buf'],
      ['yStep', 'int'],
      ['ldy', 'int'],
      ['dG', 'buf'],
      ['ldg', 'int'],
      ['dhss', 'buf'],
      ['measure', 'bool'],
      ['steps', 'int'],
      ['hidden', 'int'],
      ['batch', 'int'],
    ],
    c: 'gg_gru_seq_grad',
  },
  /**
   * The recurrent op's weight gradients with their biases': c[cOff + i·ldc + j] = Σ_p a[aOff + i·k + p]·b[bOff +
   * j·ldb + p] (sgemm(false, true, m, n, k, 1, a, aOff, k, b, bOff, ldb, 0, c, cOff, ldc): A [m, k] with rows k
   * apart, B's rows as Bᵀ's columns), then sums[sOff + i] = A's row i summed as sumAxis sums a contiguous run (the same
   * bits as sumAxis over those m rows). Natively, where our sgemm computes the product, the sums are taken from A's rows
   * while the product reads them (native/gemm_x86.c, gg_gemm_own_row_sums), not in a second pass over A.
   */
  sgemmRowSums: {
    args: [
      ['m', 'int'],
      ['n', 'int'],
      ['k', 'int'],
      ['a', 'buf'],
      ['aOff', 'int'],
      ['b', 'buf'],
      ['bOff', 'int'],
      ['ldb', 'int'],
      ['c', 'buf'],
      ['cOff', 'int'],
      ['ldc', 'int'],
      ['sums', 'buf'],
      ['sOff', 'int'],
    ],
    c: 'gg_sgemm_row_sums',
  },
  /**
   * The GRU's weight gradients, the op's three products over dG [4·hidden, k] (rows k apart) and z's rows from zOff
   * (h's `hidden` rows, then x's `inputs`, ldz apart): both [2·hidden, hidden + inputs] = dG's rows [0, 2·hidden)·[h;
   * x]ᵀ; wi [3·hidden, inputs]'s rows from 2·hidden = dG's rows [2·hidden, 3·hidden)·xᵀ; wh [3·hidden, hidden]'s rows
   * from 2·hidden = dG's rows [3·hidden, 4·hidden)·hᵀ, each by sgemmRowSums with `withSums` (sums [4·hidden]: those
   * rows' sums in the same places), else by sgemm (alpha 1, beta 0). Natively, where our sgemm computes all three, one
   * job packs Zᵀ's depth blocks once for the three (the same bits).
   */
  gruWeightGrads: {
    args: [
      ['dG', 'buf'],
      ['k', 'int'],
      ['z', 'buf'],
      ['zOff', 'int'],
      ['ldz', 'int'],
      ['hidden', 'int'],
      ['inputs', 'int'],
      ['both', 'buf'],
      ['wi', 'buf'],
      ['wh', 'buf'],
      ['sums', 'buf'],
      ['withSums', 'bool'],
    ],
    c: 'gg_gru_weight_grads',
  },
} as const;
