import { describe, expect, it } from 'vitest';
import { CHANGED_BY_ANNOTATION } from '../../../crds/common.ts';
import type { AdmissionReview } from '../webhook/admission-review.ts';
import { reviewPolicyChange } from './policy-change-review.ts';
import { type PolicyObjectView, stampPolicyChange } from './stamp-policy-change.ts';

const PATH = '/metadata/annotations/gatehouse.dev~1changed-by';
const spec = { rules: [{ name: 'no-drop', kinds: ['drop'], action: 'block' }] };
const changed = { rules: [{ name: 'no-drop', kinds: ['drop', 'truncate'], action: 'block' }] };
const by = (name?: string, extra: Record<string, string> = {}): PolicyObjectView => ({
  metadata: { annotations: { ...extra, ...(name !== undefined && { [CHANGED_BY_ANNOTATION]: name }) } },
  spec,
});

describe('stampPolicyChange', () => {
  it.each([
    [
      'a create without annotations',
      'CREATE',
      { metadata: {}, spec },
      undefined,
      [{ op: 'add', path: '/metadata/annotations', value: { [CHANGED_BY_ANNOTATION]: 'alice' } }],
    ],
    [
      'a create with other annotations',
      'CREATE',
      by(undefined, { team: 'x' }),
      undefined,
      [{ op: 'add', path: PATH, value: 'alice' }],
    ],
    [
      'a create claiming another author',
      'CREATE',
      by('mallory'),
      undefined,
      [{ op: 'replace', path: PATH, value: 'alice' }],
    ],
    ['a create already naming the user', 'CREATE', by('alice'), undefined, []],
    [
      'a spec change',
      'UPDATE',
      { ...by('bob'), spec: changed },
      by('bob'),
      [{ op: 'replace', path: PATH, value: 'alice' }],
    ],
    [
      'a spec change that also claims another author',
      'UPDATE',
      { ...by('mallory'), spec: changed },
      by('bob'),
      [{ op: 'replace', path: PATH, value: 'alice' }],
    ],
    ['a metadata-only update (finalizer)', 'UPDATE', by('bob'), by('bob'), []],
    [
      'a metadata-only update rewriting the annotation',
      'UPDATE',
      by('mallory'),
      by('bob'),
      [{ op: 'replace', path: PATH, value: 'bob' }],
    ],
    [
      'a metadata-only update removing the annotation',
      'UPDATE',
      by(undefined),
      by('bob'),
      [{ op: 'add', path: PATH, value: 'bob' }],
    ],
    [
      'a metadata-only update adding one where none was',
      'UPDATE',
      by('mallory'),
      by(undefined),
      [{ op: 'remove', path: PATH }],
    ],
    [
      'a metadata-only update of an unstamped object',
      'UPDATE',
      { metadata: {}, spec },
      { metadata: {}, spec },
      [],
    ],
  ] as const)('%s', (_name, operation, object, oldObject, patch) => {
    expect(
      stampPolicyChange({ operation, object, ...(oldObject && { oldObject }), username: 'alice' }),
    ).toEqual(patch);
  });
});

describe('reviewPolicyChange', () => {
  const logger = { debug: () => {}, warn: () => {} };
  const review = (request: Record<string, unknown>): AdmissionReview =>
    ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u1',
        kind: { group: 'gatehouse.dev', version: 'v1alpha1', kind: 'Guardrail' },
        resource: { group: 'gatehouse.dev', version: 'v1alpha1', resource: 'guardrails' },
        operation: 'CREATE',
        object: by('mallory'),
        userInfo: { username: 'alice', groups: ['dev'] },
        ...request,
      },
    }) as AdmissionReview;

  it('patches in the authenticated user', () => {
    const response = reviewPolicyChange(review({}), { logger }).response!;
    expect(response).toMatchObject({ uid: 'u1', allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(response.patch!, 'base64').toString())).toEqual([
      { op: 'replace', path: PATH, value: 'alice' },
    ]);
  });

  it.each([
    ['a status update', { operation: 'UPDATE', subResource: 'status', oldObject: by('bob') }],
    ['a delete', { operation: 'DELETE' }],
    ['another resource', { resource: { group: '', version: 'v1', resource: 'configmaps' } }],
    ['no user', { userInfo: {} }],
    ['an update without the old object', { operation: 'UPDATE' }],
    ['no object', { object: null }],
  ])('refuses %s (fails closed)', (_name, request) => {
    const response = reviewPolicyChange(review(request), { logger }).response!;
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain('gatehouse:');
  });
});
