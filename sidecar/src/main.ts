#!/usr/bin/env node
import { runAuditVerify } from './cli/audit-verify.ts';
import { PROXY_USAGE, runProxyCommand } from './cli/proxy-command.ts';
import { UserError } from './errors.ts';

const USAGE = `usage: gatehouse <command> [options]

commands:
  proxy          run the database proxy (the sidecar)
  audit verify   prove an audit log complete and unaltered
  help           show this text

${PROXY_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'proxy':
      return runProxyCommand(rest);
    case 'audit':
      if (rest[0] !== 'verify')
        throw new UserError('usage: gatehouse audit verify FILE [--public-key PEMFILE] [--head FILE]');
      return runAuditVerify(rest.slice(1));
    case 'help':
    case '--help':
    case '-h':
    case undefined:
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UserError(`unknown command "${command}" (try: gatehouse help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UserError) {
      console.error(`gatehouse: ${error.message}`);
      process.exitCode = 2;
      return;
    }
    console.error(`gatehouse: internal error: ${error instanceof Error ? error.message : String(error)}`);
    if (process.env['GATEHOUSE_DEBUG'] && error instanceof Error) console.error(error.stack);
    process.exitCode = 1;
  },
);
