import type { Command } from 'commander';
import { resolveSimConfig, SIM_OPTIONS } from '../config/sim-config.js';
import { integer } from '../config/options.js';
import { EXIT, UsageError } from '../errors.js';
import { countMessages, generateDataset, startSimulator } from '../sim/index.js';
import { formatCount } from '../import/summary.js';
import { addOptions, examplesAndExitCodes } from './options.js';

export function registerSim(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('sim')
    .description('run the built-in WAHA simulator (a real HTTP server on 127.0.0.1) until Ctrl-C')
    .option('--port <n>', 'port to listen on, 0 for any free one (default: 3000)');
  addOptions(command, SIM_OPTIONS);
  command.addHelpText(
    'after',
    examplesAndExitCodes(
      [
        "waha-import sim                                       the study's dataset on port 3000",
        'waha-import sim --engine GOWS --api-key secret --latency-ms 200 --capacity 50',
        'waha-import sim --error-rate 0.05 --rate-limit-rate 0.02 --retry-after 1   a flaky WAHA',
      ],
      [
        [EXIT.ok, 'stopped with Ctrl-C'],
        [EXIT.importFailed, 'it could not start (the port is taken)'],
        EXIT.usage,
      ],
    ),
  );
  command.action(async (flags: Record<string, unknown>) => {
    const port = integer(0, 65_535)(flags.port ?? 3000);
    if (!port.ok) throw new UsageError(`--port ${port.problem}`);
    const config = resolveSimConfig(flags);
    const dataset = generateDataset(config.dataset);
    const counts = countMessages(dataset);
    const chats = dataset.chats.length;
    const sim = await startSimulator({
      ...config.simulator,
      port: port.value,
      // Handed over, not copied: nothing here uses it again, and copying a big history takes long.
      sessions: [{ name: 'default', dataset, copyDataset: false }],
    }).catch((error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES') {
        throw new UsageError(
          `--port ${port.value}: ${code === 'EADDRINUSE' ? 'another program already listens on it' : 'not allowed for this user'}`,
          'Choose another port with --port, or --port 0 for any free one.',
        );
      }
      throw error;
    });
    process.stdout.write(
      `WAHA simulator (${config.simulator.engine ?? 'NOWEB'} profile) listening on ${sim.url} (session "default", ${formatCount(chats)} chats, ` +
        `${formatCount(counts.visible)} messages; stats at ${sim.url}/__sim/stats). Ctrl-C stops it.\n`,
    );
    if (config.simulator.apiKey === undefined) {
      // Real WAHA started without a key generates a random one; only WAHA_NO_API_KEY opens it.
      process.stdout.write(
        'Running WITHOUT an API key: any X-Api-Key (or none) is accepted. Real WAHA is never open like ' +
          'this unless WAHA_NO_API_KEY is set; pass --api-key to require one.\n',
      );
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await sim.close();
    setExit(EXIT.ok);
  });
}
