/** Helpers for the audit tests and benchmark: real events, a real pino logger that keeps its lines. */
import pino, { type Logger } from 'pino';
import type { SessionContext, StatementEvent } from './events.ts';

export const sessionContext: SessionContext = {
  session: '01JTESTSESSION',
  identity: {
    subject: 'system:serviceaccount:shop:orders',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:shop'],
    method: 'token',
    namespace: 'shop',
    serviceAccount: 'orders',
    pod: 'orders-7d9f-abcde',
  },
  client: { address: '10.1.2.3', port: 40312 },
  database: 'shop',
  protocol: 'postgres',
};

export function statementEvent(rows: number): StatementEvent {
  return {
    type: 'statement',
    context: sessionContext,
    statement: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
    fingerprint: '348bee4e67e86ca6',
    via: 'simple',
    outcome: 'ok',
    command: 'SELECT',
    rows,
    durationMs: 0.42,
  };
}

/** A pino logger writing to an array of parsed lines. */
export function collectingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}
