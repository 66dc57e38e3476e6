import type { Command } from 'commander';
import { CONNECTION_OPTIONS, loadConfigFile } from '../config/run-config.js';
import { resolveOptions } from '../config/options.js';
import { EXIT, UsageError } from '../errors.js';
import { chooseOutputMode, createReporter } from '../report/reporter.js';
import { secretMasker, urlPassword } from '../util/redact.js';
import { addOptions } from './options.js';
import { openStore } from './wiring.js';
import type { ConnectionConfig } from '../config/run-config.js';

export function registerMigrate(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('migrate')
    .description('create or upgrade the tables (run also does this on its own)')
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)')
    .option('--json', 'print the result as JSON');
  addOptions(
    command,
    CONNECTION_OPTIONS.filter((spec) => ['databaseUrl', 'dataDir', 'schema'].includes(spec.key)),
  );
  command.action(async (flags: Record<string, unknown>) => {
    const file = loadConfigFile(process.cwd(), flags.config as string | undefined);
    const { values, problems } = resolveOptions(CONNECTION_OPTIONS, { flags, env: process.env, file });
    if (problems.length) throw new UsageError(problems, 'Run `waha-import migrate --help`.');
    const config = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [k, v.value]),
    ) as unknown as ConnectionConfig;
    const reporter = createReporter({
      mode: chooseOutputMode({ json: Boolean(flags.json) }, Boolean(process.stderr.isTTY)),
      mask: secretMasker([urlPassword(config.databaseUrl)]),
    });
    const store = await openStore(config, reporter);
    await store.close();
    setExit(EXIT.ok);
  });
}
