import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UserError } from '../errors.ts';

/**
 * parseArgs with errors a person can read: an unknown flag or a missing value becomes a one-line
 * UserError that names the flag and where the usage is (`command` is `proxy`, `audit verify`...).
 */
export function parseCliArgs<const T extends ParseArgsConfig>(
  config: T,
  command: string,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    // Node's message goes on to explain `--` for positionals; its first sentence is the problem.
    const first = (error as Error).message.split(/\.\s|\n/)[0] ?? 'invalid arguments';
    throw new UserError(`${first.replace(/\.$/, '')} (see gatehouse ${command} --help)`);
  }
}
