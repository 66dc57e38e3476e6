import { Option, type Command } from 'commander';
import { helpText, type OptionSpec } from '../config/options.js';

/** Declares the table's options on a command, without defaults: defaults are applied in config/, once. */
export function addOptions(command: Command, specs: ReadonlyArray<OptionSpec<unknown>>): Command {
  for (const spec of specs) command.addOption(new Option(spec.flag, helpText(spec)));
  return command;
}
