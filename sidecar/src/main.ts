#!/usr/bin/env -S node --liftoff-only
import { runAuditVerify } from './cli/audit-verify.ts';
import { PROXY_USAGE, runProxyCommand } from './cli/proxy-command.ts';
import { UserError } from './errors.ts';

const USAGE = `usage: gatehouse <command> [options]

commands:
  proxy          run the database proxy (the sidecar)
  operator       run the Kubernetes operator (controllers and the injection webhook)
  status         show each DatabaseAccess and whether its pods carry the current sidecar
  audit verify   prove an audit log complete and unaltered
  help           show this text

${PROXY_USAGE}

Run \`gatehouse operator --help\` for the operator's options.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'proxy':
      return runProxyCommand(rest);
    case 'operator': {
      // Loaded on demand: the Kubernetes client is not part of the sidecar's start-up.
      const { runOperatorCommand } = await import('../../operator/src/cli/operator-command.ts');
      return runOperatorCommand(rest);
    }
    case 'status': {
      const { runStatusCommand } = await import('../../operator/src/cli/status.ts');
      return runStatusCommand(rest);
    }
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
