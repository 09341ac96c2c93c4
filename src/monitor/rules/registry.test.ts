/** The registry is the one list: severity, flow kinds and marks come from it, and docs/diagnosis.md describes it all. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FLOW_KINDS, MARKS, RULES, SEVERE_KINDS, SEVERITY } from './index.js';
import { THRESHOLDS } from './thresholds.js';
import type { FindingKind } from './types.js';

const DOC = readFileSync(new URL('../../../docs/diagnosis.md', import.meta.url), 'utf8');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} -]/gu, '')
    .replace(/ /g, '-');
}

/** The doc's sections by anchor: each heading's text up to the next heading of any level. */
function sections(md: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = md.split(/^(#{2,4} .*)$/m);
  for (let i = 1; i < parts.length; i += 2) out.set(slug(parts[i]!.replace(/^#+ /, '')), parts[i + 1] ?? '');
  return out;
}

describe('the rule registry', () => {
  it('lists each kind once, ordered by severity, and derives the severity order, flow kinds and marks', () => {
    const kinds = RULES.map((r) => r.kind);
    expect(new Set(kinds).size).toBe(kinds.length);
    const ranks = RULES.map((r) => r.severity);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    expect(new Set(ranks).size).toBe(ranks.length);
    expect(SEVERITY).toEqual([...kinds, 'healthy']);
    expect([...FLOW_KINDS]).toEqual(RULES.filter((r) => r.flow).map((r) => r.kind));
    expect([...SEVERE_KINDS]).toEqual(RULES.filter((r) => r.severe).map((r) => r.kind));
    const marks = Object.values(MARKS);
    expect(new Set(marks).size).toBe(marks.length);
    for (const r of RULES) expect(MARKS[r.kind]).toBe(r.mark);
  });

  it('keeps the severity order and flow kinds the diagnosis always had', () => {
    const before: FindingKind[] = [
      'exploding',
      'non-finite',
      'dead-units',
      'saturation',
      'vanishing',
      'loss-spike',
      'update-ratio-too-high',
      'update-ratio-too-low',
      'healthy',
    ];
    expect(SEVERITY.filter((k) => before.includes(k))).toEqual(before);
    expect([...FLOW_KINDS].sort()).toEqual([
      'dead-units',
      'exploding',
      'exploding-through-time',
      'non-finite',
      'saturation',
      'vanishing',
      'vanishing-through-time',
    ]);
  });
});

describe('docs/diagnosis.md', () => {
  const doc = sections(DOC);

  it('has a section for every rule, at the rule’s anchor', () => {
    for (const r of RULES) expect([...doc.keys()], `${r.kind}: #${r.docs}`).toContain(r.docs);
  });

  it('describes every threshold by name in the section of each rule that reads it', () => {
    for (const r of RULES) {
      for (const t of r.thresholds) expect(doc.get(r.docs), `${t} in #${r.docs}`).toContain(`\`${t}\``);
    }
  });

  it('describes every threshold of THRESHOLDS, each read by some rule', () => {
    const read = new Set(RULES.flatMap((r) => r.thresholds));
    for (const t of Object.keys(THRESHOLDS)) {
      expect(DOC, t).toContain(`\`${t}\``);
      expect(read.has(t as keyof typeof THRESHOLDS), `${t} is read by no rule`).toBe(true);
    }
  });

  it('names every kind in its severity order paragraph', () => {
    const order = DOC.match(/The verdict is the most severe finding, in this order: ([^;]+);/)?.[1] ?? '';
    const listed = [...order.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
    expect(listed).toEqual(SEVERITY.slice(0, -1));
  });
});
