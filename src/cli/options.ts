import { Option, type Command } from 'commander';
import { helpText, type OptionSpec } from '../config/options.js';
import { EXIT } from '../errors.js';

/** Declares the table's options on a command, without defaults: defaults are applied in config/, once. */
export function addOptions(command: Command, specs: ReadonlyArray<OptionSpec<unknown>>): Command {
  for (const spec of specs) command.addOption(new Option(spec.flag, helpText(spec)));
  return command;
}

const EXIT_MEANING: Record<number, string> = {
  [EXIT.ok]: 'success',
  [EXIT.importFailed]: 'failed (the message says why)',
  [EXIT.usage]: 'a flag, environment variable or config value is wrong',
  [EXIT.wahaRefused]: 'WAHA unreachable or refused',
  [EXIT.locked]: 'another run holds the lock',
  [EXIT.chatsFailed]: 'some chats could not be imported',
  [EXIT.interrupted]: 'interrupted (Ctrl-C)',
};

/** The help's closing block: examples, then the exit codes this command can end with (and what each means). */
export function examplesAndExitCodes(examples: string[], codes: Array<number | [number, string]>): string {
  const lines = codes.map((code) => {
    const [value, meaning] = Array.isArray(code) ? code : [code, EXIT_MEANING[code] ?? ''];
    return `  ${String(value).padEnd(4)} ${meaning}`;
  });
  return `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}\n\nExit codes:\n${lines.join('\n')}`;
}
