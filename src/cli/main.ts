/**
 * The `gradguard` command line. Every command that produces a result takes `--json` and then prints exactly one JSON
 * object on stdout (progress goes to stderr). User mistakes print one clear line and exit with status 2, never a
 * stack trace.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../train/config.js';
import { isUserError, userMessage } from './errors.js';
import { trainCommand } from './train.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command();
  let code = 0;
  program
    .name('gradguard')
    .description('Train deep networks that stay trainable: watch every layer’s gradients, diagnose, fix.')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError('(run gradguard --help for usage)');

  program
    .command('train')
    .description('train a model from a config (default: the headline MNIST MLP) and print its gradient report')
    .option('-c, --config <file>', 'YAML or JSON config (every key optional; defaults are the headline example)')
    .option('-s, --set <key=value>', 'override one config key, e.g. --set model.depth=30 (repeatable)', collect, [])
    .option('--json', 'print one JSON object with the summary and diagnosis on stdout')
    .option('--store <dir>', 'run store directory', './gradguard-runs')
    .option('--no-store', 'do not record the run in the run store')
    .option('--quiet', 'no progress output')
    .action(async (opts) => {
      code = await trainCommand({
        config: opts.config,
        set: opts.set,
        json: Boolean(opts.json),
        store: opts.store === false ? null : opts.store,
        quiet: Boolean(opts.quiet),
      });
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof ConfigError || isUserError(e)) {
      process.stderr.write(`gradguard: ${userMessage(e)}\n`);
      return 2;
    }
    throw e;
  }
  return code;
}
