import { describe, expect, it } from 'vitest';
import type { Refused } from '../policy/gates/session-gate.ts';
import { parametersHash } from './approval-request.ts';
import { heldStatement, releasedRules } from './held-statement.ts';

const refused = (held: Refused['held']): Refused => ({
  outcome: 'refuse',
  cause: 'guardrail',
  reason: 'Guardrail approvals: drops',
  message: 'held',
  approval: true,
  ...(held && { held }),
});
const statement = {
  identity: { subject: 'local:admin', groups: ['admins'], method: 'local' as const },
  database: 'shop',
  sql: 'DELETE FROM staging.batches WHERE id = $1',
  parameters: [Buffer.from('7')],
  fingerprint: 'fp',
  shape: 'DELETE FROM staging.batches WHERE id = $1',
};
const settings = {
  approvers: [{ kind: 'Group' as const, name: 'approvers' }],
  waitSeconds: 30,
  ttlSeconds: 600,
  allowSelfApproval: false,
};

describe('heldStatement', () => {
  it('binds the identity, database, exact text and parameters, with every rule and its defaults', () => {
    const held = heldStatement(
      refused({
        demands: [
          { guardrail: 'approvals', rule: 'drops', namespace: 'shop', settings },
          { guardrail: 'security', rule: 'pii', settings: { approvers: settings.approvers } },
        ],
        kinds: ['delete-without-where'],
        tables: ['staging.batches'],
      }),
      statement,
    );
    expect(held).toMatchObject({
      binding: {
        subject: 'local:admin',
        database: 'shop',
        statement: statement.sql,
        parametersHash: parametersHash([Buffer.from('7')]),
      },
      rules: [
        {
          guardrail: 'approvals',
          rule: 'drops',
          namespace: 'shop',
          waitSeconds: 30,
          ttlSeconds: 600,
          autoApprove: [],
        },
        { guardrail: 'security', rule: 'pii', waitSeconds: 120, ttlSeconds: 900, allowSelfApproval: false },
      ],
      impact: { tables: ['staging.batches'] },
      facts: {
        kinds: ['delete-without-where'],
        tables: ['staging.batches'],
        affectedRows: undefined,
        sensitiveColumns: undefined,
      },
    });
    expect([...releasedRules(held!)]).toEqual(['approvals/drops', 'security/pii']);
  });

  it('is undefined when no approval can release the statement', () => {
    expect(heldStatement(refused(undefined), statement)).toBeUndefined();
    expect(heldStatement(refused({ demands: [], kinds: [], tables: [] }), statement)).toBeUndefined();
    // One rule without approvers is enough to keep it refused.
    expect(
      heldStatement(
        refused({
          demands: [
            { guardrail: 'a', rule: 'r', settings },
            { guardrail: 'b', rule: 's' },
          ],
          kinds: ['drop'],
          tables: [],
        }),
        statement,
      ),
    ).toBeUndefined();
  });
});
