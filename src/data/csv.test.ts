import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCsv, parseCsv } from './csv.js';
import { DataError } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'gradguard-csv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let k = 0;
const file = (text: string) => {
  const p = join(dir, `f${k++}.csv`);
  writeFileSync(p, text);
  return p;
};

function dataError(fn: () => unknown): DataError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return e as DataError;
  }
  throw new Error('expected a DataError');
}

describe('parseCsv', () => {
  it('detects a header, the delimiter, quotes and CRLF, and skips blank lines', () => {
    const t = parseCsv('a;b;"c;d"\r\n1;2;3\r\n\r\n4;"5";6\r\n', 'x.csv');
    expect(t.delimiter).toBe(';');
    expect(t.header).toEqual(['a', 'b', 'c;d']);
    expect(t.rows).toEqual([
      ['1', '2', '3'],
      ['4', '5', '6'],
    ]);
    expect(t.lines).toEqual([2, 4]);
  });

  it('has no header when the first row is numeric, or when told', () => {
    expect(parseCsv('1,2\n3,4\n', 'x').header).toBeUndefined();
    expect(parseCsv('1,2\n3,4\n', 'x', { header: true }).header).toEqual(['1', '2']);
    expect(parseCsv('x,y\n', 'x').header).toEqual(['x', 'y']);
    // a text label in the last column does not make the first row a header
    expect(parseCsv('1,2,cat\n3,4,dog\n', 'x').header).toBeUndefined();
  });

  it('points at the line of a ragged row or an open quote', () => {
    expect(dataError(() => parseCsv('a,b\n1,2\n3\n', 'r.csv')).message).toMatch(/^r\.csv:3: 1 fields, expected 2/);
    expect(dataError(() => parseCsv('a,b\n"1,2\n', 'q.csv')).message).toMatch(/^q\.csv:2: unterminated quoted field/);
    expect(dataError(() => parseCsv('\n\n', 'e.csv')).message).toMatch(/e\.csv: the file is empty/);
  });
});

describe('loadCsv', () => {
  const rows = Array.from({ length: 50 }, (_, i) => `${i},${i * 2},${i % 2}`).join('\n');

  it('loads numeric features and an integer label (last column by default), split 80/20 stratified', () => {
    const ds = loadCsv({ file: file(`f1,f2,y\n${rows}\n`) });
    expect(ds.inputShape).toEqual([2]);
    expect(ds.numClasses).toBe(2);
    expect(ds.train.n).toBe(40);
    expect(ds.test.n).toBe(10);
    expect([...ds.test.y].filter((v) => v === 1)).toHaveLength(5);
    for (let i = 0; i < ds.train.n; i++) {
      const [a, b] = [ds.train.x[2 * i]!, ds.train.x[2 * i + 1]!];
      expect(b).toBe(a * 2);
      expect(ds.train.y[i]).toBe(a % 2);
    }
  });

  it('takes the label by name or index, class names as labels, and a separate test file', () => {
    const f = file('species,len,width\nsetosa,1,2\nvirginica,3,4\nsetosa,5,6\n');
    const t = file('species,len,width\nversicolor,7,8\n');
    const ds = loadCsv({ file: f, testFile: t, label: 'species' });
    expect(ds.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect([...ds.train.y]).toEqual([0, 2, 0]);
    expect([...ds.test.y]).toEqual([1]);
    expect([...ds.train.x]).toEqual([1, 2, 3, 4, 5, 6]);
    const byIndex = loadCsv({ file: f, testFile: t, label: 0 });
    expect([...byIndex.test.x]).toEqual([7, 8]);
    const neg = loadCsv({ file: f, testFile: t, label: -3 });
    expect([...neg.test.x]).toEqual([7, 8]);
  });

  it('regression keeps real-valued targets and splits with the seed', () => {
    const f = file(`a,t\n${Array.from({ length: 20 }, (_, i) => `${i},${i / 10}`).join('\n')}`);
    const ds = loadCsv({ file: f, task: 'regression', testFraction: 0.25, seed: 3 });
    expect(ds.task).toBe('regression');
    expect(ds.numClasses).toBeUndefined();
    expect(ds.test.n).toBe(5);
    for (let i = 0; i < 5; i++) expect(ds.test.y[i]).toBeCloseTo(ds.test.x[i]! / 10, 6);
    const again = loadCsv({ file: f, task: 'regression', testFraction: 0.25, seed: 3 });
    expect([...again.test.x]).toEqual([...ds.test.x]);
  });

  it('standardises per feature with training statistics', () => {
    const ds = loadCsv({ file: file(`f1,f2,y\n${rows}\n`), normalize: 'standardize-features' });
    expect(ds.normalization?.mean).toHaveLength(2);
    let m = 0;
    for (let i = 0; i < ds.train.n; i++) m += ds.train.x[2 * i + 1]!;
    expect(m / ds.train.n).toBeCloseTo(0, 5);
  });

  it('errors name the file, the line, the column and the fix', () => {
    const bad = file('a,b,y\n1,2,0\n3,x,1\n');
    expect(dataError(() => loadCsv({ file: bad })).message).toMatch(
      /f\d+\.csv:3: column "b" \(1\) holds "x", not a number; every column except the label must be numeric/,
    );
    const empty = file('a,b,y\n1,,0\n');
    expect(dataError(() => loadCsv({ file: empty })).message).toMatch(/:2: column "b" \(1\) holds an empty value/);
    const frac = file('a,y\n1,0.5\n2,1\n');
    expect(dataError(() => loadCsv({ file: frac, testFraction: 0.5 })).message).toMatch(
      /:2: label "0.5" in column "y" \(1\) is not a class index .*data\.task: regression/,
    );
    expect(dataError(() => loadCsv({ file: bad, label: 'z' })).message).toMatch(
      /no column named "z" \(columns: a, b, y\)/,
    );
    expect(dataError(() => loadCsv({ file: file('1,2\n3,4\n'), label: 'y' })).message).toMatch(/no header row/);
    expect(dataError(() => loadCsv({ file: join(dir, 'none.csv') })).code).toBe('not-found');
    expect(dataError(() => loadCsv({ file: file('a\n1\n2\n') })).message).toMatch(/only 1 column/);
    expect(dataError(() => loadCsv({ file: file('a,y\n1,0\n') })).message).toMatch(/too few/);
    const other = file('a,b,c,y\n1,2,3,0\n');
    expect(dataError(() => loadCsv({ file: bad, testFile: other })).message).toMatch(/4 columns, but .* has 3/);
  });
});
