import { EffnetError } from '@effnet/core';
import { closest, type Command, helpText, type Io, parseCommandArgs, UsageError } from './args.js';
import { benchCommand } from './commands/bench.js';
import { classifyCommand } from './commands/classify.js';
import { cocoEvalCommand } from './commands/coco-eval.js';
import { completionCommand } from './commands/completion.js';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { detectCommand } from './commands/detect.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { infoCommand } from './commands/info.js';
import { runCommand } from './commands/run.js';
import { segmentCommand } from './commands/segment.js';
import { serveCommand } from './commands/serve.js';
import { trainCommand } from './commands/train.js';
import { variantsCommand } from './commands/variants.js';
import { pullCommandSpec, zooListCommand, zooRmCommand, zooVerifyCommand } from './commands/zoo.js';

/** Every command, in the order `effnet --help` lists them. A name with a space is a sub-command (`zoo list`). */
export const COMMANDS: readonly Command[] = [
  variantsCommand,
  infoCommand,
  runCommand,
  exportCommand,
  convertCommand,
  zooListCommand,
  pullCommandSpec,
  zooRmCommand,
  zooVerifyCommand,
  classifyCommand,
  serveCommand,
  detectCommand,
  segmentCommand,
  trainCommand,
  evalCommand,
  benchCommand,
  cocoEvalCommand,
  demoCommand,
  completionCommand(() => COMMANDS),
] as unknown as readonly Command[];

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return [
    'effnet: EfficientNet in TypeScript',
    '',
    'Usage: effnet <command> [options]      effnet <command> --help for its options and examples',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Exit codes: 0 done, 1 an error (a message names the input at fault), 2 a usage mistake.',
    'EFFNET_DEBUG=1 prints stack traces; EFFNET_CACHE, EFFNET_REGISTRY and EFFNET_OFFLINE configure the zoo;',
    'compiled models are cached under EFFNET_CACHE/compiled (EFFNET_COMPILE_CACHE=0: off).',
  ].join('\n');
}

function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  const two = COMMANDS.find((c) => c.name === `${argv[0]} ${argv[1]}`);
  if (two) return { command: two, rest: argv.slice(2) };
  const one = COMMANDS.find((c) => c.name === argv[0]);
  return one ? { command: one, rest: argv.slice(1) } : undefined;
}

/**
 * Runs one command line. Returns the exit code; errors a user can cause are thrown as EffnetError (UsageError for
 * exit code 2) for runCli to print.
 */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n'), progress: Io['progress'] = process.stderr): Promise<number> {
  const [first] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    const topic = first === 'help' && argv[1] ? findCommand(argv.slice(1)) : undefined;
    out(topic ? helpText(topic.command) : usage());
    return 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
    if (group.length) throw new UsageError(`effnet ${first} needs one of: ${group.map((c) => c.name.split(' ')[1]).join(', ')}${argv[1] ? ` (got "${argv[1]}")` : ''}`);
    const near = closest(first, [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!))]);
    throw new UsageError(`unknown command "${first}"${near ? `; did you mean "${near}"?` : ''} (effnet --help lists the commands)`);
  }
  const parsed = parseCommandArgs(found.command, found.rest);
  if (!parsed) {
    out(helpText(found.command));
    return 0;
  }
  return found.command.run(parsed, { out, progress });
}

/** What the user sees for an error: one line for anything they can act on; a stack only for bugs, or with EFFNET_DEBUG=1. */
export function errorReport(err: unknown, env: NodeJS.ProcessEnv = process.env): { text: string; exitCode: number } {
  const debug = env.EFFNET_DEBUG === '1' || env.EFFNET_DEBUG === 'true';
  if (err instanceof EffnetError) return { text: debug ? (err.stack ?? err.message) : err.message, exitCode: err instanceof UsageError ? 2 : 1 };
  const e = err as NodeJS.ErrnoException;
  // Files that are missing or forbidden are the user's to fix, whoever noticed first.
  if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EISDIR' || e?.code === 'ENOTDIR' || e?.code === 'ENOSPC' || e?.code === 'EEXIST')
    return { text: debug ? (e.stack ?? e.message) : e.message, exitCode: 1 };
  const message = err instanceof Error ? err.message : String(err);
  if (debug) return { text: err instanceof Error ? (err.stack ?? message) : message, exitCode: 1 };
  return { text: `${message.split('\n')[0]} (an internal error: EFFNET_DEBUG=1 shows where; please report it)`, exitCode: 1 };
}

/** Runs the command line, printing errors as one actionable line, and sets the exit code. */
export async function runCli(argv = process.argv.slice(2)): Promise<void> {
  // The command keeps compiled models on disk (under EFFNET_CACHE) so that the next run skips compilation; the
  // libraries do so only when asked. EFFNET_COMPILE_CACHE=0 turns it off.
  process.env.EFFNET_COMPILE_CACHE ??= '1';
  // `effnet ... | head`: the reader went away, which ends the command quietly, as Unix tools do.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    const r = errorReport(err);
    process.stderr.write(`effnet: ${r.text}\n`);
    process.exitCode = r.exitCode;
  }
}
