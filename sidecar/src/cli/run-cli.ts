import { UserError } from '../errors.ts';
import { AUDIT_EXPORT_USAGE, runAuditExport } from './audit-export.ts';
import { AUDIT_VERIFY_USAGE, runAuditVerify } from './audit-verify.ts';
import { PROXY_USAGE, runProxyCommand } from './proxy-command.ts';
import { packageVersion } from './version.ts';

const USAGE = `usage: gatehouse <command> [options]

commands:
  proxy          run the database proxy (the sidecar)
  operator       run the Kubernetes operator (controllers and the injection webhook)
  status         show each DatabaseAccess and whether its pods carry the current sidecar
  collector      collect the proxies' audit records into one store (PostgreSQL)
  audit verify   prove an audit log complete and unaltered
  audit query    ask the collector who ran what (statements, sessions, sources)
  audit reset-source  accept a flagged source's damage (collector admins)
  audit export   audit logs as OCSF events (or their records) on stdout, for a SIEM
  evidence       build a signed evidence pack for a period (and verify one), for an auditor
  approvals      list, show, approve and deny held statements (a standalone proxy's admin endpoint)
  approve, deny  decide an ApprovalRequest in Kubernetes (kubectl gatehouse approve NAME --reason ...)
  login, logout  sign in to your identity provider (OIDC) as a person, or sign out (docs/people.md)
  connect        start psql or mysql on a Gatehouse as you, with a fresh token
  tunnel         a loopback port that opens a Gatehouse as you: GUI tools connect with no password
  mcp            serve the Model Context Protocol to an AI agent, through the proxy (docs/mcp.md)
  request-access ask for clear values of masked columns for a while (decided with \`approvals\`)
  version        print the version (also --version)
  help           show this text

${PROXY_USAGE}

Run \`gatehouse <command> --help\` for a command's options.`;

const AUDIT_USAGE = `usage: gatehouse audit verify FILE [options]
       gatehouse audit query [statements|sessions|sources] [options]
       gatehouse audit reset-source ID --reason TEXT [options]

${AUDIT_VERIFY_USAGE}

Run \`gatehouse audit query --help\` for the query's options, \`gatehouse audit reset-source --help\`
for resetting a flagged source.

usage: gatehouse audit export [options] FILE...

${AUDIT_EXPORT_USAGE}`;

/** The `gatehouse` command line: runs one command and returns its exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'proxy':
      return runProxyCommand(rest);
    case 'operator': {
      // Loaded on demand: the Kubernetes client is not part of the sidecar's start-up.
      const { runOperatorCommand } = await import('../../../operator/src/cli/operator-command.ts');
      return runOperatorCommand(rest);
    }
    case 'status': {
      const { runStatusCommand } = await import('../../../operator/src/cli/status.ts');
      return runStatusCommand(rest);
    }
    case 'approve':
    case 'deny': {
      const { runDecideCommand } = await import('../../../operator/src/cli/decide-command.ts');
      return runDecideCommand(command, rest);
    }
    case 'approvals': {
      const { runApprovalsCommand } = await import('./approvals-command.ts');
      return runApprovalsCommand(rest);
    }
    case 'collector': {
      const { runCollectorCommand } = await import('../../../operator/src/collector/collector-command.ts');
      return runCollectorCommand(rest);
    }
    case 'login': {
      const { runLoginCommand } = await import('./login-command.ts');
      return runLoginCommand(rest);
    }
    case 'logout': {
      const { runLogoutCommand } = await import('./login-command.ts');
      return runLogoutCommand(rest);
    }
    case 'connect': {
      const { runConnectCommand } = await import('./connect-command.ts');
      return runConnectCommand(rest);
    }
    case 'tunnel': {
      const { runTunnelCommand } = await import('./tunnel-command.ts');
      return runTunnelCommand(rest);
    }
    case 'mcp': {
      const { runMcpCommand } = await import('./mcp-command.ts');
      return runMcpCommand(rest);
    }
    case 'evidence': {
      const { runEvidenceCommand } = await import('./evidence-command.ts');
      return runEvidenceCommand(rest);
    }
    case 'request-access': {
      const { runRequestAccessCommand } = await import('./request-access-command.ts');
      return runRequestAccessCommand(rest);
    }
    case 'audit':
      if (rest[0] === 'verify') return runAuditVerify(rest.slice(1));
      if (rest[0] === 'query') {
        const { runAuditQuery } = await import('../../../operator/src/collector/audit-query-command.ts');
        return runAuditQuery(rest.slice(1));
      }
      if (rest[0] === 'export') return runAuditExport(rest.slice(1));
      if (rest[0] === 'reset-source') {
        const { runAuditReset } = await import('../../../operator/src/collector/audit-reset-command.ts');
        return runAuditReset(rest.slice(1));
      }
      if (rest[0] === '--help' || rest[0] === '-h' || rest[0] === 'help') {
        console.log(AUDIT_USAGE);
        return 0;
      }
      throw new UserError(
        rest[0] === undefined
          ? 'audit needs a subcommand: gatehouse audit verify FILE, audit export FILE... or audit query (see gatehouse audit --help)'
          : `unknown audit subcommand "${rest[0]}" (see gatehouse audit --help)`,
      );
    case 'version':
    case '--version':
    case '-V':
      console.log(`gatehouse ${packageVersion()}`);
      return 0;
    case 'help':
    case '--help':
    case '-h':
    case undefined:
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UserError(`unknown command "${command}" (see gatehouse --help)`);
  }
}

/** Runs the CLI as the process: one line on stderr for any error, never a stack trace unless asked. */
export function runAsProcess(argv: string[]): void {
  runCli(argv).then(
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
}
