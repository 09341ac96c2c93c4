/**
 * Numeric CSV files: every column a number except the label, which may be a number or (for classification) a class
 * name. Errors point at `file:line`.
 */
import { readFileSync } from 'node:fs';
import { Rng } from '../tensor/rng.js';
import { gatherSplit, type NormalizeMode, standardize, stratifiedSplit } from './split.js';
import { DataError, type Dataset, FLOAT32_MAX, MAX_CLASSES, type Split, type Task } from './types.js';

/** Spellings of a missing value: never a class name. */
const MISSING = /^(|[+-]?(nan|inf|infinity)|null|none|n\/a)$/i;

export interface CsvOptions {
  /** The CSV file (training data, or all data when there is no `testFile`). */
  file: string;
  /** A separate test file with the same columns; without one, `testFraction` of `file` is held out. */
  testFile?: string;
  /** The label column: its header name, or its 0-based index (negative counts from the end). Default: the last. */
  label?: string | number;
  /** Whether the first row names the columns. Default `auto`: yes when it has a non-number above a number. */
  header?: 'auto' | boolean;
  /** The field separator. Default: `,`, `;` or tab, whichever splits the first row into the most fields. */
  delimiter?: string;
  /** Default `classification`: labels are integers 0..K-1 or class names (sorted, then numbered from 0). */
  task?: Task;
  /** The share of `file` held out for testing when there is no `testFile` (default 0.2), stratified by class. */
  testFraction?: number;
  /** Seed of the split (default 0). */
  seed?: number;
  normalize?: NormalizeMode;
}

/** One parsed file: the header (if any) and the data rows with their 1-based line numbers. */
export interface CsvTable {
  header: string[] | undefined;
  rows: string[][];
  lines: number[];
  delimiter: string;
}

const isNumber = (s: string) => {
  const t = s.trim();
  return t !== '' && Number.isFinite(Number(t));
};

/** Splits one line into fields, honouring double quotes (`"a,b"`, `""` for a quote inside). */
function splitFields(line: string, delim: string, file: string, lineNo: number): string[] {
  if (!line.includes('"')) return line.split(delim);
  const out: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < line.length) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"') {
        if (line[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
    } else if (ch === '"' && field.trim() === '') {
      quoted = true;
      field = '';
      i++;
    } else if (line.startsWith(delim, i)) {
      out.push(field);
      field = '';
      i += delim.length;
    } else {
      field += ch;
      i++;
    }
  }
  if (quoted) {
    throw new DataError(
      'csv',
      `${file}:${lineNo}: unterminated quoted field; close the quote (fields cannot span lines)`,
      file,
    );
  }
  out.push(field);
  return out;
}

/** Parses CSV text into fields (no type conversion). Blank lines are skipped. */
export function parseCsv(text: string, file: string, opts: Pick<CsvOptions, 'header' | 'delimiter'> = {}): CsvTable {
  const all = text.split('\n');
  const first = all.findIndex((l) => l.trim() !== '');
  if (first < 0) throw new DataError('csv', `${file}: the file is empty; expected a header and rows of numbers`, file);
  const firstLine = all[first]!.replace(/\r$/, '');
  const delimiter =
    opts.delimiter ??
    [',', ';', '\t'].reduce((best, d) => (firstLine.split(d).length > firstLine.split(best).length ? d : best), ',');
  if (delimiter === '') throw new DataError('csv', `${file}: the delimiter cannot be empty`, file);
  const rows: string[][] = [];
  const lines: number[] = [];
  for (let i = first; i < all.length; i++) {
    const line = all[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    rows.push(splitFields(line, delimiter, file, i + 1).map((f) => f.trim()));
    lines.push(i + 1);
  }
  let hasHeader: boolean;
  if (opts.header === undefined || opts.header === 'auto') {
    const r0 = rows[0]!;
    const r1 = rows[1];
    hasHeader = r1 ? r0.some((f, j) => !isNumber(f) && r1[j] !== undefined && isNumber(r1[j]!)) : !r0.every(isNumber);
  } else hasHeader = opts.header;
  const firstLineNo = lines[0]!;
  const header = hasHeader ? rows.shift() : undefined;
  if (hasHeader) lines.shift();
  const width = header?.length ?? rows[0]?.length ?? 0;
  for (let r = 0; r < rows.length; r++) {
    if (rows[r]!.length !== width) {
      throw new DataError(
        'csv',
        `${file}:${lines[r]}: ${rows[r]!.length} fields, expected ${width} (like line ${firstLineNo}); check the delimiter ${JSON.stringify(delimiter)} and quoting`,
        file,
      );
    }
  }
  return { header, rows, lines, delimiter };
}

function readCsv(path: string, opts: CsvOptions): CsvTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError('not-found', `${path}: cannot read CSV file (${(e as Error).message})`, path, { cause: e });
  }
  const t = parseCsv(text, path, opts);
  if (t.rows.length === 0) throw new DataError('csv', `${path}: no data rows after the header`, path);
  return t;
}

function labelIndex(t: CsvTable, label: string | number | undefined, file: string): number {
  const width = t.header?.length ?? t.rows[0]!.length;
  if (width < 2) {
    throw new DataError(
      'csv',
      `${file}: only ${width} column; expected at least one feature column and a label column (is the delimiter ${JSON.stringify(t.delimiter)} right?)`,
      file,
    );
  }
  if (label === undefined) return width - 1;
  if (typeof label === 'number') {
    const j = label < 0 ? width + label : label;
    if (!Number.isInteger(label) || j < 0 || j >= width) {
      throw new DataError('config', `${file}: data.label ${label} is not a column index in [0, ${width})`, file);
    }
    return j;
  }
  if (!t.header) {
    throw new DataError(
      'config',
      `${file}: data.label "${label}" names a column, but the file has no header row; give the column index instead or set data.header: true`,
      file,
    );
  }
  const j = t.header.indexOf(label);
  if (j < 0) {
    throw new DataError(
      'config',
      `${file}: no column named "${label}" (columns: ${t.header.join(', ')}); set data.label to one of them`,
      file,
    );
  }
  return j;
}

/**
 * A number read from a cell, refused when float32 would hold it as Infinity, or (a class index) when it is over
 * MAX_CLASSES - 1. `where` starts the message: `file:line: column "b" (1) holds 1e39,`.
 */
function checkSize(v: number, task: Task, where: string, file: string): number {
  if (Math.abs(v) > FLOAT32_MAX)
    throw new DataError('csv', `${where} beyond float32 (it would be Infinity); rescale it or drop the row`, file);
  if (task === 'classification' && v >= MAX_CLASSES)
    throw new DataError(
      'csv',
      `${where} is over the limit of ${MAX_CLASSES - 1} (classes are numbered 0..K-1, at most ${MAX_CLASSES.toLocaleString('en-US')}); is data.label the right column?`,
      file,
    );
  return v;
}

/** The sorted class names of label column `lj`; a missing value (empty, NaN, Inf) would be a class of its own. */
function classNamesOf(tables: readonly { t: CsvTable; file: string }[], lj: number, column: string): string[] {
  for (const { t, file } of tables)
    for (let r = 0; r < t.rows.length; r++) {
      const s = t.rows[r]![lj]!;
      if (MISSING.test(s.trim()))
        throw new DataError(
          'csv',
          `${file}:${t.lines[r]}: label ${JSON.stringify(s)} in ${column} is a missing value, not a class; fill or drop the row`,
          file,
        );
    }
  const names = [...new Set(tables.flatMap(({ t }) => t.rows.map((row) => row[lj]!)))].sort();
  if (names.length > MAX_CLASSES)
    throw new DataError(
      'csv',
      `${tables[0]!.file}: ${names.length} distinct labels, over the limit of ${MAX_CLASSES.toLocaleString('en-US')} classes; is data.label the right column?`,
      tables[0]!.file,
    );
  return names;
}

/**
 * Loads a CSV dataset. Every column but the label must hold finite numbers (missing values are an error: fill or
 * drop them first).
 */
export function loadCsv(opts: CsvOptions): Dataset {
  const task = opts.task ?? 'classification';
  const main = readCsv(opts.file, opts);
  const lj = labelIndex(main, opts.label, opts.file);
  const testTable = opts.testFile !== undefined ? readCsv(opts.testFile, opts) : undefined;
  const width = main.header?.length ?? main.rows[0]!.length;
  if (testTable && opts.testFile !== undefined) {
    const tw = testTable.header?.length ?? testTable.rows[0]!.length;
    if (tw !== width) {
      throw new DataError(
        'csv',
        `${opts.testFile}: ${tw} columns, but ${opts.file} has ${width}; both files need the same columns`,
        opts.testFile,
      );
    }
  }
  const tables = [{ t: main, file: opts.file }, ...(testTable ? [{ t: testTable, file: opts.testFile! }] : [])];
  const features = width - 1;
  const colName = (j: number) => (main.header ? `column "${main.header[j]}" (${j})` : `column ${j}`);

  // labels: numbers, or class names when any label of a classification task is not a number
  const rawLabels = tables.flatMap(({ t }) => t.rows.map((r) => r[lj]!));
  let classNames: string[] | undefined;
  let numClasses: number | undefined;
  const byName = task === 'classification' && !rawLabels.every(isNumber);
  if (byName) classNames = classNamesOf(tables, lj, colName(lj));

  const toSplit = ({ t, file }: { t: CsvTable; file: string }): Split => {
    const n = t.rows.length;
    const x = new Float32Array(n * features);
    const y = new Float32Array(n);
    for (let r = 0; r < n; r++) {
      const row = t.rows[r]!;
      let k = r * features;
      for (let j = 0; j < width; j++) {
        const s = row[j]!;
        if (j === lj) {
          if (byName) {
            y[r] = classNames!.indexOf(s);
            continue;
          }
          const v = Number(s);
          if (!isNumber(s) || (task === 'classification' && (!Number.isInteger(v) || v < 0))) {
            throw new DataError(
              'csv',
              `${file}:${t.lines[r]}: label ${JSON.stringify(s)} in ${colName(j)} is not ${task === 'classification' ? 'a class index (an integer >= 0)' : 'a number'}${task === 'classification' ? '; for real-valued targets set data.task: regression' : ''}`,
              file,
            );
          }
          y[r] = checkSize(v, task, `${file}:${t.lines[r]}: label ${s} in ${colName(j)}`, file);
          continue;
        }
        if (!isNumber(s)) {
          throw new DataError(
            'csv',
            `${file}:${t.lines[r]}: ${colName(j)} holds ${s === '' ? 'an empty value' : JSON.stringify(s)}, not a number; every column except the label must be numeric (fill or drop missing values, or pick the label with data.label)`,
            file,
          );
        }
        x[k++] = checkSize(Number(s), 'regression', `${file}:${t.lines[r]}: ${colName(j)} holds ${s},`, file);
      }
    }
    return { x, y, n };
  };
  const mainSplit = toSplit(tables[0]!);
  const testGiven = tables[1] ? toSplit(tables[1]) : undefined;

  if (task === 'classification') {
    if (classNames) numClasses = classNames.length;
    else {
      let max = 0;
      for (const s of [mainSplit, testGiven]) if (s) for (const v of s.y) if (v > max) max = v;
      numClasses = max + 1;
    }
  }

  let train: Split;
  let test: Split;
  if (testGiven) {
    train = mainSplit;
    test = testGiven;
  } else {
    const frac = opts.testFraction ?? 0.2;
    if (!(frac > 0 && frac < 1)) {
      throw new DataError('config', `data.testFraction must be between 0 and 1 (exclusive), got ${frac}`);
    }
    const N = mainSplit.n;
    const testSize = Math.round(N * frac);
    if (testSize < 1 || testSize >= N) {
      throw new DataError(
        'csv',
        `${opts.file}: ${N} rows are too few to hold out ${frac * 100}% for testing; add rows or give a testFile`,
        opts.file,
      );
    }
    const seed = opts.seed ?? 0;
    let idx: { train: ArrayLike<number>; test: ArrayLike<number> };
    if (task === 'classification') {
      idx = stratifiedSplit(mainSplit.y, numClasses!, { trainSize: N - testSize, testSize }, seed);
    } else {
      const perm = Int32Array.from({ length: N }, (_, i) => i);
      new Rng(seed).shuffle(perm);
      idx = { test: perm.subarray(0, testSize), train: perm.subarray(testSize) };
    }
    train = gatherSplit(mainSplit.x, mainSplit.y, features, 1, idx.train);
    test = gatherSplit(mainSplit.x, mainSplit.y, features, 1, idx.test);
  }
  const normalization = standardize(train, test, features, opts.normalize ?? 'none');
  return {
    name: 'csv',
    task,
    inputShape: [features],
    inputSize: features,
    targetShape: [],
    ...(numClasses !== undefined ? { numClasses } : {}),
    ...(classNames ? { classNames } : {}),
    train,
    test,
    ...(normalization ? { normalization } : {}),
    source: opts.testFile !== undefined ? `${opts.file} + ${opts.testFile}` : opts.file,
  };
}
