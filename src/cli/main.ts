import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT, KnownError, UsageError } from '../errors.js';
import { colourLevel, formatError, jsonErrorLine } from '../report/reporter.js';
import { Chalk } from 'chalk';
import { registerRun } from './run.js';
import { registerMigrate } from './migrate.js';
import { registerSim } from './sim.js';
import { registerBench } from './bench.js';
import { registerStatus } from './status.js';
import { registerData } from './data.js';
import { registerQueue } from './queue.js';

/**
 * The entry point: builds the program, runs one command, and turns its outcome into an exit code.
 * Commands return their exit code; a known error maps to its own code; anything else is a bug (1).
 */
/** The version in package.json (two levels up from src/cli and from dist/cli alike). */
function packageVersion(): string {
  const text = fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

// Output piped into `head` or a closed pager: the reader has gone, which is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('waha-import')
    .description(
      'Copy WhatsApp chat history from a WAHA server into PostgreSQL: fast, resumable, idempotent.',
    )
    .version(packageVersion(), '-V, --version', 'print the version of waha-import')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  let exitCode: number = EXIT.ok;
  const setExit = (code: number): void => {
    exitCode = code;
  };
  registerRun(program, setExit);
  registerMigrate(program, setExit);
  registerSim(program, setExit);
  registerBench(program, setExit);
  registerStatus(program, setExit);
  registerData(program, setExit);
  registerQueue(program, setExit);
  program.addHelpText(
    'after',
    `
Exit codes:
  ${EXIT.ok}    success
  ${EXIT.importFailed}    the import failed (WAHA sent something unusable, PostgreSQL failed, or a bug)
  ${EXIT.usage}    a flag, environment variable or config value is wrong
  ${EXIT.wahaRefused}    WAHA unreachable or refused (API key, unknown session, session not WORKING, a redirect to another origin)
  ${EXIT.locked}    another run holds the lock (or the embedded PostgreSQL's data directory)
  ${EXIT.chatsFailed}    finished, but some chats could not be imported (listed by status; the next run retries them)
  ${EXIT.interrupted}  interrupted (Ctrl-C / SIGINT); run again to continue`,
  );
  // A command asked for --json ends with one JSON line on stdout whatever happens: a failure before
  // (or outside) its own output, a usage error included, is an `error` event there too.
  const json = wantsJson(program, argv);
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are "errors" to commander; anything else is a usage error already printed.
      if (error.exitCode === 0) return EXIT.ok;
      if (json) {
        const usage = new UsageError(error.message.replace(/^error: /, ''), 'Add --help for usage.');
        process.stdout.write(jsonErrorLine(usage) + '\n');
      }
      return EXIT.usage;
    }
    const colour = new Chalk({ level: colourLevel(process.env, Boolean(process.stderr.isTTY)) });
    process.stderr.write(formatError(error, colour) + '\n');
    if (json) process.stdout.write(jsonErrorLine(error) + '\n');
    return error instanceof KnownError ? error.exitCode : EXIT.importFailed;
  }
}

/** `--json` among the arguments (before a `--`) of a command that has it. */
function wantsJson(program: Command, argv: string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  const own = end === -1 ? args : args.slice(0, end);
  const command = program.commands.find((c) => c.name() === own[0]);
  return (
    command !== undefined &&
    command.options.some((option) => option.long === '--json') &&
    own.includes('--json')
  );
}

const code = await main(process.argv);
// Let stdout/stderr drain before leaving; pending handles (sockets, timers) must not keep us alive.
process.exitCode = code;
setImmediate(() => process.exit(code));
