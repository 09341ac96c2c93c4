/**
 * An experiment's YAML (`experiments/NAME.yaml`): what the paper says, the base config, the arms, and the sizes
 * (tiny / quick / full). Loading validates the whole file, and every arm's config at every size, before anything
 * trains; a problem names the file, the arm and the key. See framework.ts for the format with an example.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { GradguardError } from '../base/errors.js';
import { readTextFile } from '../io/text.js';
import { applySet, Config, ConfigError, resolveDefaults } from '../train/config.js';

/** The sizes an experiment runs at: `tiny` for tests, `quick` (`--quick`), `full` (paper-like; the default). */
export type SizeName = 'tiny' | 'quick' | 'full';
export const SIZE_NAMES: readonly SizeName[] = ['tiny', 'quick', 'full'];

/** An experiment's name (its file name) and an arm's: lower case, digits, `-`, `_` and `.`. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Config overrides as a mapping of key paths to values: `{ model.depth: 30, init.weight: kaiming-normal }`. */
const Overrides = z.record(z.string(), z.unknown()).default({});

const ArmSpec = z
  .object({
    name: z.string().regex(NAME, 'lower-case letters, digits, . _ - (at most 64)'),
    /** A short description for the page (default: the overrides). */
    label: z.string().optional(),
    set: Overrides,
  })
  .strict();

const SizeSpec = z
  .object({
    /** One run per arm and seed (the seed is the config's `seed`). */
    seeds: z.array(z.number().int()).min(1),
    /** Overrides for every arm at this size (applied after the arm's own). */
    set: Overrides,
    /** Overrides for one arm at this size, by arm name (applied last). */
    arms: z.record(z.string(), Overrides).default({}),
    /** What this size is, in words, for the page (`2 epochs on the 10,000 bundled digits`). */
    note: z.string().optional(),
  })
  .strict();

export const ExperimentFile = z
  .object({
    title: z.string().min(1),
    /** The paper (authors, title, venue, year) or the tutorial section the experiment reproduces. */
    paper: z.string().min(1),
    /** The paper's result in a sentence or two: what the page measures itself against. */
    claim: z.string().min(1),
    /** A gradguard config (every key optional, as `gradguard train -c`): what all arms share. */
    base: z.record(z.string(), z.unknown()).default({}),
    /** The arms (optional when `grid` is given: the grid's combinations are then the arms). */
    arms: z.array(ArmSpec).min(1).optional(),
    /**
     * Optional: every arm crossed with every combination of these key paths' values (arm `a` with
     * `{ model.activation: [relu, tanh] }` becomes `a-relu` and `a-tanh`; with one unnamed arm just `relu`, `tanh`).
     */
    grid: z.record(z.string(), z.array(z.union([z.string(), z.number(), z.boolean()])).min(1)).optional(),
    sizes: z.object({ tiny: SizeSpec, quick: SizeSpec, full: SizeSpec }).strict(),
  })
  .strict();
export type ExperimentFile = z.infer<typeof ExperimentFile>;

/** One arm after the grid was expanded: its name, label and overrides (`key.path` -> value). */
export interface Arm {
  name: string;
  label: string;
  set: Record<string, unknown>;
}

/** A loaded experiment file: the validated YAML and its expanded arms. */
export interface ExperimentSpec extends ExperimentFile {
  name: string;
  file: string;
  armList: Arm[];
}

/** An experiment file is wrong, or an experiment does not exist: the user's (or the experiment author's) mistake. */
export class ExperimentError extends GradguardError {
  static override readonly code = 'experiment.invalid';
  override readonly name = 'ExperimentError';
}

/** The folder of the experiment files: `experiments/` at the package root (two levels up from src/experiment/ and dist/experiment/). */
export function experimentsDir(): string {
  return new URL('../../experiments/', import.meta.url).pathname;
}

/** The names of the experiment files in `dir`, sorted. */
export function experimentFiles(dir = experimentsDir()): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** Reads and validates `dir/NAME.yaml`, and builds every arm's config at every size (so a bad key fails now). */
export function loadExperiment(name: string, dir = experimentsDir()): ExperimentSpec {
  const file = join(dir, `${name}.yaml`);
  if (!NAME.test(name) || !existsSync(file))
    throw new ExperimentError(`unknown experiment '${name}'`, {
      code: 'experiment.unknown',
      detail: `choose one of ${experimentFiles(dir).join(', ') || '(none)'} (gradguard experiment list)`,
    });
  let raw: unknown;
  try {
    raw = parseYaml(readTextFile(file, 1 << 20), { maxAliasCount: 100 });
  } catch (e) {
    throw new ExperimentError(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const res = ExperimentFile.safeParse(raw);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    throw new ExperimentError(`${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  if (!res.data.arms && !res.data.grid) throw new ExperimentError(`${file}: give arms, a grid, or both`);
  const spec: ExperimentSpec = { ...res.data, name, file, armList: expandArms(res.data) };
  const names = new Set<string>();
  for (const a of spec.armList) {
    if (names.has(a.name)) throw new ExperimentError(`${file}: two arms are named '${a.name}'`);
    names.add(a.name);
  }
  for (const size of SIZE_NAMES) {
    for (const armName of Object.keys(spec.sizes[size].arms))
      if (!names.has(armName)) throw new ExperimentError(`${file}: sizes.${size}.arms: no arm is named '${armName}'`);
    for (const arm of spec.armList) armConfig(spec, arm, size, spec.sizes[size].seeds[0]!);
  }
  return spec;
}

function expandArms(f: ExperimentFile): Arm[] {
  let out: Arm[] = f.arms
    ? f.arms.map((a) => ({ name: a.name, label: a.label ?? describeSet(a.set), set: a.set }))
    : [{ name: '', label: '', set: {} }];
  if (!f.grid) return out;
  for (const [key, values] of Object.entries(f.grid)) {
    out = out.flatMap((a) =>
      values.map((v) => ({
        name: a.name ? `${a.name}-${String(v)}` : String(v),
        label: [a.label, `${key}=${String(v)}`].filter(Boolean).join(', '),
        set: { ...a.set, [key]: v },
      })),
    );
  }
  return out;
}

/** `model.depth=30, init.weight=kaiming-normal` */
export function describeSet(set: Record<string, unknown>): string {
  return Object.entries(set)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ');
}

/**
 * The config of one run: the base, then the arm's overrides, the size's, the size's for this arm, then `extra`
 * (an experiment module's `prepare`), and the seed; validated and with defaults filled, as `gradguard train` does.
 */
export function armConfig(
  spec: ExperimentSpec,
  arm: Arm,
  size: SizeName,
  seed: number,
  extra: Record<string, unknown> = {},
): Config {
  const raw = structuredClone(spec.base) as Record<string, unknown>;
  const s = spec.sizes[size];
  const layers = [arm.set, s.set, s.arms[arm.name] ?? {}, extra, { seed }];
  try {
    for (const set of layers) for (const [k, v] of Object.entries(set)) applySet(raw, `${k}=${JSON.stringify(v)}`);
  } catch (e) {
    if (e instanceof ConfigError) throw new ExperimentError(`${spec.file}: arm '${arm.name}' (${size}): ${e.message}`);
    throw e;
  }
  const res = Config.safeParse(raw);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    const where = issue.path.join('.');
    const unknown = issue.code === 'unrecognized_keys' ? `unknown key '${issue.keys[0]}'` : issue.message;
    throw new ExperimentError(`${spec.file}: arm '${arm.name}' (${size}): ${where || '(config)'}: ${unknown}`);
  }
  return resolveDefaults(res.data);
}
