import type { Command } from 'commander';
import { CONNECTION_OPTIONS, resolveCommandOptions, type ConnectionConfig } from '../config/run-config.js';
import { EXIT } from '../errors.js';
import { chooseOutputMode, createReporter, isLiveTerminal } from '../report/reporter.js';
import { secretMasker, urlPassword } from '../util/redact.js';
import { jsonText } from '../util/terminal-text.js';
import { addOptions, examplesAndExitCodes } from './options.js';
import { openStore } from './wiring.js';

export function registerMigrate(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('migrate')
    .description('create or upgrade the tables (run also does this on its own)')
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)')
    .option('--json', 'print the result as JSON');
  addOptions(
    command,
    CONNECTION_OPTIONS.filter((spec) =>
      ['databaseUrl', 'databaseUrlFile', 'dataDir', 'schema'].includes(spec.key),
    ),
  );
  command.addHelpText(
    'after',
    examplesAndExitCodes(
      [
        'waha-import migrate                                   the embedded database, schema waha',
        'DATABASE_URL=postgres://... waha-import migrate --schema crm_waha',
      ],
      [
        EXIT.ok,
        [EXIT.importFailed, 'the database failed, or its schema is newer than this waha-import'],
        EXIT.usage,
      ],
    ),
  );
  command.action(async (flags: Record<string, unknown>) => {
    const config = resolveCommandOptions(
      CONNECTION_OPTIONS.filter((spec) =>
        ['databaseUrl', 'databaseUrlFile', 'dataDir', 'schema'].includes(spec.key),
      ),
      { flags, env: process.env, cwd: process.cwd(), configPath: flags.config as string | undefined },
      'migrate',
    ) as unknown as ConnectionConfig;
    const reporter = createReporter({
      mode: chooseOutputMode({ json: Boolean(flags.json) }, isLiveTerminal()),
      mask: secretMasker([urlPassword(config.databaseUrl)]),
    });
    const store = await openStore(config, reporter);
    await store.close();
    if (flags.json) {
      // The last line, as every --json command ends: what was done.
      process.stdout.write(
        jsonText({
          type: 'migrated',
          time: new Date().toISOString(),
          schema: config.schema,
          version: store.migration.version,
          applied: store.migration.applied,
        }) + '\n',
      );
    }
    setExit(EXIT.ok);
  });
}
