import { describe, expect, it } from 'vitest';
import { policyDocument } from '../../../test/support/policy-documents.ts';
import type { Identity } from '../identity/identity.ts';
import { loadPolicyDocuments } from '../policy/load-policy.ts';
import { MaskingSettingsCache } from '../policy/masking/masking-settings-cache.ts';
import { accessAskInput, accessRules, openOnRefusal } from './access-request.ts';
import { ApprovalBook } from './approval-book.ts';

const ANN: Identity = { subject: 'local:ann', groups: [], method: 'local' };
const BOB: Identity = { subject: 'local:bob', groups: ['approvers'], method: 'local' };
const CY: Identity = { subject: 'local:cy', groups: [], method: 'local' };
const ANN_OIDC: Identity = { subject: 'local:ann', groups: [], method: 'token', issuer: 'https://idp' };
const approvers = [{ kind: 'Group', name: 'approvers' }];

const policy = loadPolicyDocuments(
  [
    policyDocument('MaskingPolicy', 'pii', { accessRequests: { approvers, maxDurationSeconds: 600 } }),
    policyDocument('MaskingPolicy', 'cards', { accessRequests: { approvers, allowSelfApproval: true } }),
    policyDocument('MaskingPolicy', 'closed', {}),
    policyDocument('DatabaseAccess', 'app', {
      subjects: [
        { kind: 'User', name: 'local:ann' },
        { kind: 'Group', name: 'approvers' },
      ],
      allow: ['read'],
      maskingPolicies: ['pii', 'cards'],
    }),
    policyDocument('DatabaseAccess', 'contractors', {
      subjects: [{ kind: 'User', name: 'local:cy' }],
      allow: ['read'],
      maskingPolicies: ['pii', 'closed'],
    }),
  ],
  'test',
);

const ask = (over: Record<string, unknown> = {}) => ({
  database: 'app',
  columns: ['customers.email'],
  forSeconds: 300,
  reason: 'ticket 1',
  ...over,
});

describe('accessAskInput', () => {
  it.each([
    [null, /JSON object/],
    [ask({ database: '' }), /database is required/],
    [ask({ columns: [] }), /columns is required/],
    [ask({ columns: ['email'] }), /not table.column/],
    [ask({ columns: ['customers.*'] }), /no wildcards/],
    [ask({ columns: ['c.e?'] }), /no wildcards/],
    [ask({ forSeconds: 0 }), /forSeconds/],
    [ask({ forSeconds: 1.5 }), /forSeconds/],
    [ask({ reason: ' ' }), /reason is required/],
    [{ ...ask(), extra: 1 }, /unknown field extra/],
  ])('refuses %j', (body, problem) => {
    expect(accessAskInput(body)).toMatch(problem);
  });

  it('keeps each column once', () => {
    expect(accessAskInput(ask({ columns: ['a.b', 'a.b', 's.a.b'] }))).toMatchObject({
      columns: ['a.b', 's.a.b'],
    });
  });
});

describe('accessRules', () => {
  it('needs an approver of every MaskingPolicy in force; the shortest maxDurationSeconds bounds it', () => {
    const rules = accessRules(ANN, policy, accessAskInput(ask()) as never);
    expect(rules).toMatchObject([
      { guardrail: 'pii', kind: 'MaskingPolicy', allowSelfApproval: false, ttlSeconds: 300 },
      { guardrail: 'cards', kind: 'MaskingPolicy', allowSelfApproval: true, ttlSeconds: 300 },
    ]);
    expect(accessRules(ANN, policy, accessAskInput(ask({ forSeconds: 601 })) as never)).toMatch(
      /601 s is longer than the 600 s/,
    );
  });

  it('refuses where a MaskingPolicy in force takes no requests, or none masks', () => {
    expect(accessRules(CY, policy, accessAskInput(ask()) as never)).toMatch(
      /MaskingPolicy closed .* takes no access requests/,
    );
    expect(accessRules(ANN, undefined, accessAskInput(ask()) as never)).toMatch(/nothing to request/);
  });
});

describe('access requests in the ApprovalBook', () => {
  function open(book: ApprovalBook, requester: Identity = ANN, forSeconds = 300) {
    const input = accessAskInput(ask({ forSeconds })) as Exclude<ReturnType<typeof accessAskInput>, string>;
    const rules = accessRules(requester, policy, input) as never;
    return book.openAccess({
      requester,
      database: 'app',
      access: {
        columns: input.columns,
        forSeconds,
        ...(requester.issuer !== undefined && { issuer: requester.issuer }),
      },
      rules,
      reason: input.reason,
    });
  }

  it('becomes an exemption for exactly its identity and database once approved, until it ends', () => {
    let now = 1_000_000;
    const book = new ApprovalBook({ now: () => now });
    const request = open(book);
    expect(request.phase).toBe('Pending');
    expect(book.accessExemptions(ANN, 'app')).toEqual([]);
    const before = book.accessVersion;
    expect(book.decide(request.id, BOB, 'approve', 'ok')).toMatchObject({ phase: 'Approved' });
    expect(book.accessVersion).toBeGreaterThan(before);
    expect(book.accessExemptions(ANN, 'app')).toEqual([
      { request: request.id, columns: ['customers.email'], until: now + 300_000 },
    ]);
    expect(book.accessExemptions(ANN, 'ledger')).toEqual([]);
    expect(book.accessExemptions(BOB, 'app')).toEqual([]);
    expect(book.accessExemptions(ANN_OIDC, 'app')).toEqual([]);
    // It releases no statement, whatever its text.
    expect(book.claim({ ...request.binding, parametersHash: '' }, null)).toBeUndefined();
    now += 300_000;
    expect(book.accessExemptions(ANN, 'app')).toEqual([]);
    expect(book.get(request.id)?.phase).toBe('Expired');
  });

  it('changes nothing when denied; self-approval only where every policy allows it', () => {
    const book = new ApprovalBook();
    const denied = open(book);
    book.decide(denied.id, BOB, 'deny', 'no');
    expect(book.accessExemptions(ANN, 'app')).toEqual([]);
    const own = open(book, BOB);
    expect(book.decide(own.id, BOB, 'approve', 'me')).toMatchObject({ problem: 'self-approval' });
    expect(book.decide(own.id, ANN, 'approve', 'me')).toMatchObject({ problem: 'not-an-approver' });
  });

  it('is applied by MaskingSettingsCache at the next call, and dropped at its end', () => {
    let now = 5_000_000;
    const book = new ApprovalBook({ now: () => now });
    const cache = new MaskingSettingsCache(ANN, 'app', (settings) => settings, book);
    expect(cache.get(policy, now)?.exemptions).toEqual([]);
    const request = open(book, ANN, 60);
    book.decide(request.id, BOB, 'approve', 'ok');
    expect(cache.get(policy, now)?.exemptions.map((e) => e.request)).toEqual([request.id]);
    now += 59_999;
    expect(cache.get(policy, now)?.exemptions).toHaveLength(1);
    now += 1;
    expect(cache.get(policy, now)?.exemptions).toEqual([]);
  });
});

describe('MaskingPolicy spec.accessRequests', () => {
  const load = (accessRequests: unknown) => () =>
    loadPolicyDocuments([policyDocument('MaskingPolicy', 'pii', { accessRequests })], 'test');

  it.each([
    [{ approvers: [] }, /approvers/],
    [{}, /approvers/],
    [{ approvers, maxDurationSeconds: 30 }, /maxDurationSeconds/],
    [{ approvers, maxDurationSeconds: 604801 }, /maxDurationSeconds/],
    [{ approvers, ttlSeconds: 60 }, /ttlSeconds/],
    [{ approvers: [{ kind: 'Group', name: 'a', namespace: 'x' }] }, /only for kind ServiceAccount/],
  ])('refuses %j', (spec, problem) => {
    expect(load(spec)).toThrow(problem);
  });

  it('takes approvers, a longest duration and self-approval', () => {
    expect(load({ approvers, maxDurationSeconds: 7200, allowSelfApproval: true })).not.toThrow();
  });
});

describe('openOnRefusal', () => {
  const auto = loadPolicyDocuments(
    [
      policyDocument('MaskingPolicy', 'a', { accessRequests: { approvers, openOnRefusalSeconds: 120 } }),
      policyDocument('MaskingPolicy', 'b', { accessRequests: { approvers, openOnRefusalSeconds: 300 } }),
      policyDocument('MaskingPolicy', 'c', { accessRequests: { approvers } }),
      policyDocument('DatabaseAccess', 'x', {
        subjects: [{ kind: 'User', name: 'local:ann' }],
        allow: ['read'],
        maskingPolicies: ['a', 'b'],
      }),
      policyDocument('DatabaseAccess', 'y', {
        subjects: [{ kind: 'User', name: 'local:cy' }],
        allow: ['read'],
        maskingPolicies: ['a', 'c'],
      }),
    ],
    'test',
  );

  it('opens one request for the columns, the shortest duration, and joins it on retries', () => {
    const book = new ApprovalBook();
    const first = openOnRefusal(book, auto, ANN, 'app', ['public.t.b', 'public.t.a']);
    expect(first).toMatchObject({
      phase: 'Pending',
      access: { columns: ['public.t.a', 'public.t.b'], forSeconds: 120 },
    });
    expect(openOnRefusal(book, auto, ANN, 'app', ['public.t.a', 'public.t.b'])?.id).toBe(first?.id);
    expect(openOnRefusal(book, auto, ANN, 'app', ['public.t.a'])?.id).not.toBe(first?.id);
    expect(openOnRefusal(book, auto, ANN_OIDC, 'app', ['public.t.a', 'public.t.b'])?.id).not.toBe(first?.id);
  });

  it('opens none unless every MaskingPolicy in force asks for it', () => {
    const book = new ApprovalBook();
    expect(openOnRefusal(book, auto, CY, 'app', ['public.t.a'])).toBeUndefined();
    expect(openOnRefusal(book, auto, BOB, 'app', ['public.t.a'])).toBeUndefined();
    expect(openOnRefusal(book, auto, ANN, 'app', [])).toBeUndefined();
    expect(book.list({ phase: 'Pending' })).toEqual([]);
  });

  it('refuses openOnRefusalSeconds over maxDurationSeconds', () => {
    const load = (accessRequests: unknown) => () =>
      loadPolicyDocuments([policyDocument('MaskingPolicy', 'p', { accessRequests })], 'test');
    expect(load({ approvers, openOnRefusalSeconds: 3601 })).toThrow(/may not exceed maxDurationSeconds/);
    expect(load({ approvers, maxDurationSeconds: 600, openOnRefusalSeconds: 601 })).toThrow(
      /may not exceed maxDurationSeconds/,
    );
    expect(load({ approvers, maxDurationSeconds: 600, openOnRefusalSeconds: 600 })).not.toThrow();
  });
});

describe('accessVersion', () => {
  it('changes only when an exemption starts or ends, so sessions rework masking only then', () => {
    let now = 0;
    const book = new ApprovalBook({ now: () => now });
    const input = accessAskInput(ask({ forSeconds: 60 })) as Exclude<
      ReturnType<typeof accessAskInput>,
      string
    >;
    const open = () =>
      book.openAccess({
        requester: ANN,
        database: 'app',
        access: { columns: input.columns, forSeconds: 60 },
        rules: accessRules(ANN, policy, input) as never,
        reason: 'r',
      });
    const v0 = book.accessVersion;
    const denied = open();
    book.decide(denied.id, BOB, 'deny', 'no');
    expect(book.accessVersion).toBe(v0);
    const approved = open();
    book.decide(approved.id, BOB, 'approve', 'ok');
    const v1 = book.accessVersion;
    expect(v1).toBeGreaterThan(v0);
    now += 60_000;
    book.sweep();
    expect(book.accessVersion).toBeGreaterThan(v1);
  });
});
