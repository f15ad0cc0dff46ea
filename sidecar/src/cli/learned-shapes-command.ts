import type { learnedView } from '../approvals/learned-shapes-api.ts';
import { UserError } from '../errors.ts';

type LearnedView = ReturnType<typeof learnedView>;

interface Output {
  write(text: string): unknown;
}

type Call = (path: string, body?: unknown) => Promise<{ ok: boolean; status: number; body: unknown }>;

export interface LearnedOptions {
  readonly identity?: string;
  readonly database?: string;
  readonly fingerprint?: string[];
  readonly reason?: string;
  readonly for?: string;
  readonly json?: boolean;
}

/** `gatehouse approvals learned`: the shapes unknown-shape rules met for an identity. */
export async function listLearned(
  values: LearnedOptions,
  call: Call,
  io: { stdout: Output },
): Promise<{ ok: boolean; status: number; body: unknown }> {
  const identity = needIdentity(values, 'learned');
  const query = new URLSearchParams({
    identity,
    ...(values.database !== undefined && { database: values.database }),
  });
  const answer = await call(`/approvals/learned?${query}`);
  if (!answer.ok) return answer;
  const list = answer.body as LearnedView[];
  io.stdout.write(values.json ? `${JSON.stringify(list, null, 2)}\n` : table(list, identity));
  return answer;
}

/** `gatehouse approvals approve-shapes`: approves learned shapes of an identity in one go. */
export async function approveShapes(
  values: LearnedOptions,
  forSeconds: number | undefined,
  call: Call,
  io: { stdout: Output },
): Promise<{ ok: boolean; status: number; body: unknown }> {
  const identity = needIdentity(values, 'approve-shapes');
  if (forSeconds === undefined)
    throw new UserError(
      'approve-shapes needs --for DURATION: how long the shapes stay approved (at most 30d)',
    );
  if (values.reason === undefined || values.reason.trim() === '')
    throw new UserError('approve-shapes needs --reason TEXT: say why, for the audit log');
  const answer = await call('/approvals/learned/approve', {
    identity,
    ...(values.database !== undefined && { database: values.database }),
    ...(values.fingerprint !== undefined && { fingerprints: values.fingerprint }),
    forSeconds,
    reason: values.reason,
  });
  if (!answer.ok) return answer;
  const grants = answer.body as { fingerprint: string; shape: string; until: string }[];
  io.stdout.write(
    `${grants.length} shape${grants.length === 1 ? '' : 's'} of ${identity} approved until ${grants[0]?.until ?? '?'}\n`,
  );
  return answer;
}

function needIdentity(values: LearnedOptions, action: string): string {
  if (values.identity === undefined || values.identity === '')
    throw new UserError(`${action} needs --identity SUBJECT (local:NAME, or a token's subject)`);
  return values.identity;
}

function table(list: readonly LearnedView[], identity: string): string {
  if (list.length === 0) return `no shapes learned for ${identity}\n`;
  const rows = list.map((s) => [
    s.fingerprint,
    s.database,
    String(s.count),
    s.approvedUntil ?? '-',
    s.shape.replace(/\s+/g, ' ').trim(),
  ]);
  const header = ['FINGERPRINT', 'DATABASE', 'SEEN', 'APPROVED UNTIL', 'SHAPE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return `${[header, ...rows].map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join('  ')).join('\n')}\n`;
}
