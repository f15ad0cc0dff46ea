import { getRequestListener } from '@hono/node-server';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/harness/free-port.ts';
import { startAdminServer } from '../admin/admin-server.ts';
import { ApprovalBook } from '../approvals/approval-book.ts';
import { parametersHash } from '../approvals/approval-request.ts';
import { approvalsApi } from '../approvals/approvals-api.ts';
import { UserError } from '../errors.ts';
import { createLocalAuthenticator } from '../identity/local-authenticator.ts';
import { captureLogs } from '../identity/log-capture.ts';
import { durationSeconds, runApprovalsCommand } from './approvals-command.ts';

// The CLI against the real admin endpoint over HTTP, serving the real approvals API.
const book = new ApprovalBook();
const logs = captureLogs();
let server: string;
/** A loopback port nothing listens on. */
let closedServer: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const authenticator = createLocalAuthenticator(
    {
      users: [
        { name: 'admin', password: 'admin', groups: ['admins'] },
        { name: 'lead', password: 'lead', groups: ['approvers'] },
      ],
    },
    { logger: logs.logger },
  );
  const app = approvalsApi({ book, authenticator, logger: logs.logger });
  const started = await startAdminServer('127.0.0.1', 0, new Registry(), {
    notReadyReason: () => undefined,
    approvals: getRequestListener(app.fetch),
  });
  server = `http://127.0.0.1:${started.address.port}`;
  closedServer = `http://127.0.0.1:${await freePort()}`;
  close = () => new Promise((resolve) => started.server.close(() => resolve()));
});
afterAll(() => close());

function held(statement: string) {
  return book.open({
    binding: {
      subject: 'local:admin',
      database: 'quickstart',
      statement,
      parametersHash: parametersHash([]),
    },
    fingerprint: `fp:${statement}`,
    shape: statement,
    requester: { subject: 'local:admin', groups: ['admins'], method: 'local' },
    rules: [
      {
        guardrail: 'admin-approvals',
        rule: 'drops',
        // admin is an approver too, so that its own request is refused as self-approval.
        approvers: [
          { kind: 'Group', name: 'approvers' },
          { kind: 'Group', name: 'admins' },
        ],
        allowSelfApproval: false,
        waitSeconds: 120,
        ttlSeconds: 900,
      },
    ],
    impact: { tables: ['customers'] },
  }).request;
}

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { GATEHOUSE_SERVER: server },
  };
  const code = await runApprovalsCommand(argv, io).catch((error: unknown) => {
    if (error instanceof UserError) {
      stderr += `gatehouse: ${error.message}\n`;
      return 2;
    }
    throw error;
  });
  return { code, stdout, stderr };
}

const as = (user: string) => ['--user', user, '--password', user];

describe('gatehouse approvals', () => {
  it('lists, shows and approves as an approver; the requester cannot approve their own', async () => {
    const request = held('DROP TABLE customers');
    const list = await cli('list', ...as('lead'));
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+PHASE\s+REQUESTER\s+DATABASE\s+RULE\s+STATEMENT\n/);
    expect(list.stdout).toContain(
      `${request.id}  Pending  local:admin  quickstart  drops  DROP TABLE customers`,
    );
    const json = JSON.parse((await cli('list', '--json', ...as('lead'))).stdout) as {
      id: string;
      phase: string;
    }[];
    expect(json).toEqual([
      expect.objectContaining({ id: request.id, phase: 'Pending', statement: 'DROP TABLE customers' }),
    ]);
    const show = await cli('show', request.id, ...as('lead'));
    expect(show.stdout).toContain('statement:            DROP TABLE customers');
    expect(show.stdout).toContain('rules:                drops of Guardrail admin-approvals');

    const own = await cli('approve', request.id, '--reason', 'mine', ...as('admin'));
    expect(own).toMatchObject({ code: 1, stdout: '' });
    expect(own.stderr).toMatch(/^gatehouse: local:admin asked for request .* may not decide it/);

    const approved = await cli('approve', request.id, '--reason', 'backup taken', ...as('lead'));
    expect(approved).toEqual({ code: 0, stdout: `${request.id} approved by local:lead\n`, stderr: '' });
    const again = await cli('deny', request.id, '--reason', 'too late', ...as('lead'));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is Approved, not Pending');
  });

  it('denies, and approves a shape for a while', async () => {
    const a = held('TRUNCATE staging');
    expect((await cli('deny', a.id, '--reason', 'not today', ...as('lead'))).stdout).toBe(
      `${a.id} denied by local:lead\n`,
    );
    const b = held('DROP TABLE staging_old');
    const shaped = await cli('approve', b.id, '--reason', 'weekly cleanup', '--for', '7d', ...as('lead'));
    expect(shaped.stdout).toMatch(
      new RegExp(`^${b.id} approved by local:lead; its shape is approved until \\d{4}-`),
    );
    const filtered = JSON.parse((await cli('list', '--phase', 'Denied', '--json', ...as('lead'))).stdout) as {
      id: string;
    }[];
    expect(filtered.map((r) => r.id)).toEqual([a.id]);
  });

  it('says what is wrong in one line: usage, credentials, an unreachable endpoint', async () => {
    const cases: [string[], RegExp, number][] = [
      [[], /needs a subcommand/, 2],
      [['lisst', ...as('lead')], /unknown approvals subcommand "lisst"/, 2],
      [['show', ...as('lead')], /show needs the request ID/, 2],
      [['approve', 'ar-1', ...as('lead')], /approve needs --reason/, 2],
      [['deny', 'ar-1', '--reason', 'x', '--for', '1h', ...as('lead')], /no meaning for deny/, 2],
      [['approve', 'ar-1', '--reason', 'x', '--for', 'a week', ...as('lead')], /give a number and a unit/, 2],
      [['list'], /say who you are/, 2],
      [['list', '--user', 'lead'], /--user needs --password/, 2],
      [['list', '--user', 'lead', '--password', 'wrong'], /password authentication failed/, 1],
      [
        ['list', '--server', closedServer, ...as('lead')],
        /cannot reach the approvals API at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/,
        2,
      ],
      [['show', 'ar-none', ...as('lead')], /there is no approval request ar-none/, 1],
      [['list', '--phase', 'Done', ...as('lead')], /phase must be one of/, 1],
      [['learned', ...as('lead')], /learned needs --identity SUBJECT/, 2],
      [
        ['approve-shapes', '--identity', 'local:bot', '--reason', 'x', ...as('lead')],
        /needs --for DURATION/,
        2,
      ],
      [['approve-shapes', '--identity', 'local:bot', '--for', '1d', ...as('lead')], /needs --reason/, 2],
    ];
    for (const [argv, message, code] of cases) {
      const result = await cli(...argv);
      expect(result.code, argv.join(' ')).toBe(code);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
      expect(result.stderr).toMatch(message);
    }
  });

  it('reads durations', () => {
    expect([
      durationSeconds('90s'),
      durationSeconds('30m'),
      durationSeconds('12h'),
      durationSeconds('7d'),
    ]).toEqual([90, 1800, 43200, 604800]);
    for (const bad of ['', '7', 'd', '1.5h', '-1h', '1w'])
      expect(() => durationSeconds(bad), bad).toThrow(UserError);
  });
});
