/**
 * The playground's state: a list of `key.path=value` assignments over the CLI's defaults, exactly what
 * `gradguard train --set ...` takes. The URL hash holds them (`#data.name=spirals&model.depth=30&...`), so a link
 * reproduces a setup, and the same list makes the equivalent command. Pure (no DOM): tested in Node.
 */

/** The keys the page's controls set, in the order the hash and the command list them. */
export const KEYS = [
  'seed',
  'data.name',
  'data.length',
  'model.type',
  'model.depth',
  'model.width',
  'model.hiddenSize',
  'model.activation',
  'model.residual',
  'model.zeroInitResidual',
  'model.norm',
  'init.weight',
  'init.std',
  'init.gain',
  'init.recurrentGain',
  'clip',
  'clip[0].type',
  'clip[0].max',
  'optim.name',
  'optim.lr',
  'schedule.name',
  'schedule.warmupSteps',
  'train.batchSize',
  'train.maxSteps',
] as const;

export type Key = (typeof KEYS)[number];
export type State = Partial<Record<Key, string>>;

/** The setup a page without a hash opens with: a 20-layer ReLU MLP with He init on spirals, which learns. */
export const DEFAULT_STATE: State = {
  seed: '0',
  'data.name': 'spirals',
  'model.type': 'mlp',
  'model.depth': '20',
  'model.width': '16',
  'model.activation': 'relu',
  'model.residual': 'false',
  'model.norm': 'none',
  'init.weight': 'kaiming-normal',
  clip: '[]',
  'optim.name': 'adam',
  'optim.lr': '0.003',
  'schedule.name': 'constant',
  'train.batchSize': '32',
  'train.maxSteps': '2000',
};

/** Data sets with a 2-D input (a decision boundary to draw). */
export const PLANAR = new Set(['spirals', 'circles', 'xor', 'gaussians']);
/** Sequence data sets (recurrent models). */
export const SEQUENCE = new Set(['adding']);

/** Drops keys that do not apply to the rest of the state (so the command carries no dead keys). */
export function normalizeState(s: State): State {
  const out: State = { ...s };
  const recurrent = ['rnn', 'lstm', 'gru'].includes(out['model.type'] ?? 'mlp');
  if (recurrent) {
    delete out['model.depth'];
    delete out['model.width'];
    delete out['model.residual'];
    delete out['model.zeroInitResidual'];
    delete out['model.norm'];
    // an LSTM or GRU has fixed gates: model.activation applies to a vanilla RNN only (the config refuses it)
    if (out['model.type'] !== 'rnn') delete out['model.activation'];
  } else {
    delete out['model.hiddenSize'];
    if (out['model.residual'] !== 'true') delete out['model.zeroInitResidual'];
  }
  if (!SEQUENCE.has(out['data.name'] ?? '')) delete out['data.length'];
  const w = out['init.weight'] ?? '';
  if (w !== 'normal') delete out['init.std'];
  if (!/^(xavier|orthogonal)/.test(w)) delete out['init.gain'];
  // the list is emptied first (`clip=[]`), so `clip[0].type=agc` starts from nothing rather than the CLI's default
  out.clip = '[]';
  const ct = out['clip[0].type'];
  if (ct === undefined || ct === 'none') {
    delete out['clip[0].type'];
    delete out['clip[0].max'];
  } else if (ct === 'value' || ct === 'norm' || ct === 'global-norm') {
    out['clip[0].max'] ??= '1';
  } else delete out['clip[0].max'];
  return out;
}

/** Whether the control of `key` means anything for state `n` (the page hides those that do not). */
export function applies(key: Key, n: State): boolean {
  const recurrent = ['rnn', 'lstm', 'gru'].includes(n['model.type'] ?? 'mlp');
  const w = n['init.weight'] ?? '';
  const ct = n['clip[0].type'] ?? 'none';
  switch (key) {
    case 'data.length':
      return SEQUENCE.has(n['data.name'] ?? '');
    case 'model.depth':
    case 'model.width':
    case 'model.residual':
    case 'model.norm':
      return !recurrent;
    case 'model.zeroInitResidual':
      return !recurrent && n['model.residual'] === 'true';
    case 'model.activation':
      return !recurrent || n['model.type'] === 'rnn';
    case 'model.hiddenSize':
    case 'init.recurrentGain':
      return recurrent;
    case 'init.std':
      return w === 'normal';
    case 'init.gain':
      return /^(xavier|orthogonal)/.test(w);
    case 'clip[0].max':
      return ct === 'value' || ct === 'norm' || ct === 'global-norm';
    case 'clip':
    case 'schedule.warmupSteps':
      return false;
    default:
      return true;
  }
}

/** The assignments of a state, in KEYS order (clip=[] before any clip[0] key, as `--set` needs). */
export function toSets(s: State): string[] {
  const n = normalizeState(s);
  return KEYS.filter((k) => n[k] !== undefined).map((k) => `${k}=${n[k]}`);
}

/** The URL hash of a state: `#k=v&k=v`, values URI-encoded. */
export function toHash(s: State): string {
  return `#${toSets(s)
    .map((a) => {
      const eq = a.indexOf('=');
      return `${a.slice(0, eq)}=${encodeURIComponent(a.slice(eq + 1))}`;
    })
    .join('&')}`;
}

/**
 * A state from a URL hash. Known keys are taken; anything else is returned in `unknown` (the page says so rather
 * than ignoring it silently). An empty hash gives the default state.
 */
export function fromHash(hash: string): { state: State; unknown: string[] } {
  const body = hash.replace(/^#/, '');
  if (!body) return { state: { ...DEFAULT_STATE }, unknown: [] };
  const state: State = {};
  const unknown: string[] = [];
  for (const part of body.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    if ((KEYS as readonly string[]).includes(key)) state[key as Key] = value;
    else unknown.push(key);
  }
  return { state, unknown };
}

/** Quotes a shell word when it needs it (POSIX single quotes). */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The equivalent command line. */
export function toCommand(s: State): string {
  return ['gradguard train', ...toSets(s).map((a) => `--set ${shellWord(a)}`)].join(' ');
}

/** Applies a diagnosis fix (`--set` assignments) to a state; keys outside KEYS are reported, not dropped silently. */
export function applyFix(s: State, sets: readonly string[]): { state: State; ignored: string[] } {
  const out: State = { ...s };
  const ignored: string[] = [];
  for (const a of sets) {
    const eq = a.indexOf('=');
    const key = a.slice(0, eq);
    if ((KEYS as readonly string[]).includes(key)) out[key as Key] = a.slice(eq + 1);
    else ignored.push(a);
  }
  return { state: out, ignored };
}

export interface Lesson {
  id: string;
  title: string;
  /** What to watch for, in a sentence or two. */
  text: string;
  state: State;
}

const base: State = { ...DEFAULT_STATE, 'train.maxSteps': '600' };

/** The guided lessons, in the tutorial's order: each is a link (its hash). */
export const LESSONS: readonly Lesson[] = [
  {
    id: 'vanishing',
    title: '1. Deep sigmoid nets vanish',
    text: '30 sigmoid layers with weights drawn from normal(0, 0.05): each layer multiplies the gradient by at most 0.25 × a small weight, so the first layers get almost nothing. The bars of the first layers sink on the log scale, the loss stays at its baseline and the verdict reads vanishing. Press the fix button.',
    state: {
      ...base,
      'model.depth': '30',
      'model.width': '32',
      'model.activation': 'sigmoid',
      'init.weight': 'normal',
      'init.std': '0.05',
      'clip[0].type': 'global-norm',
      'clip[0].max': '1',
      'optim.lr': '0.001',
      'schedule.name': 'cosine',
      'train.maxSteps': '150',
    },
  },
  {
    id: 'exploding',
    title: '2. A large init explodes',
    text: 'The same depth with ReLU and weights of std 1 (about 3× too large for width 16): activations and gradients grow layer after layer. The global norm is huge, the loss is in the millions and the verdict reads exploding.',
    state: {
      ...base,
      'model.depth': '30',
      'model.activation': 'relu',
      'init.weight': 'normal',
      'init.std': '1',
      'optim.lr': '0.01',
    },
  },
  {
    id: 'init',
    title: '3. Xavier / He initialisation fixes it',
    text: 'Kaiming (He) normal init, std √(2 / fan-in), keeps the variance of activations and gradients the same in every ReLU layer (He et al. 2015); Xavier does the same for tanh (Glorot & Bengio 2010). The 30 bars line up and the loss falls.',
    state: {
      ...base,
      'model.depth': '30',
      'model.width': '32',
      'model.activation': 'relu',
      'init.weight': 'kaiming-normal',
      'clip[0].type': 'global-norm',
      'clip[0].max': '1',
      'optim.lr': '0.001',
      'schedule.name': 'cosine',
      'train.maxSteps': '300',
    },
  },
  {
    id: 'residual',
    title: '4. Residual connections',
    text: 'A 50-layer net of residual blocks h + f(h), each branch starting at zero: the identity path carries the gradient straight to the first layers (He et al. 2016), and it trains to a loss near zero.',
    state: {
      ...base,
      'model.depth': '50',
      'model.activation': 'relu',
      'model.residual': 'true',
      'model.zeroInitResidual': 'true',
      'init.weight': 'kaiming-normal',
      'schedule.name': 'cosine',
    },
  },
  {
    id: 'clipping',
    title: '5. Gradient clipping',
    text: 'Plain SGD at a high learning rate (0.2) on 20 ReLU layers: with the global gradient norm clipped at 1 (Pascanu et al. 2013) no single step can be huge, and it learns. Set clipping to none and train again: the same run stalls above the baseline.',
    state: {
      ...base,
      'model.depth': '20',
      'model.width': '32',
      'model.activation': 'relu',
      'init.weight': 'kaiming-normal',
      'clip[0].type': 'global-norm',
      'clip[0].max': '1',
      'optim.name': 'sgd',
      'optim.lr': '0.2',
      'train.maxSteps': '300',
    },
  },
  {
    id: 'rnn',
    title: '6. The RNN that forgets',
    text: 'The adding problem: the target is the sum of two marked numbers far apart in a sequence of 60. A vanilla tanh RNN stays at the baseline (MSE 0.167) and the verdict reads not-learning: the gradient from the end does not reach the first marker (see the gradient per time step). Switch the model to LSTM and its loss falls below the baseline.',
    state: {
      ...base,
      'data.name': 'adding',
      'data.length': '60',
      'model.type': 'rnn',
      'model.hiddenSize': '32',
      'model.activation': 'tanh',
      'init.weight': 'default',
      'clip[0].type': 'global-norm',
      'clip[0].max': '1',
      'optim.lr': '0.001',
      'train.maxSteps': '800',
    },
  },
];
