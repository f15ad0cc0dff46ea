import { describe, expect, it } from 'vitest';
import type { Authenticator } from '../identity/identity.ts';
import { captureLogs } from '../identity/log-capture.ts';
import { ApprovalBook } from './approval-book.ts';
import { approvalsHandler, isLoopback } from './serve-approvals.ts';

const authenticator = (needsPassword: boolean): Authenticator => ({
  needsPassword,
  authenticate: () => Promise.reject(new Error('not called')),
  close() {},
});

describe('approvalsHandler', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.5', false],
    ['127.example.com', false],
    ['', false],
  ])('%j is loopback: %s', (host, expected) => {
    expect(isLoopback(host)).toBe(expected);
  });

  it('serves approvals on loopback with a password or token authenticator', async () => {
    const logs = captureLogs();
    expect(
      await approvalsHandler('127.0.0.1', authenticator(true), new ApprovalBook(), logs.logger),
    ).toBeTypeOf('function');
  });

  it('does not serve them where approvers would send credentials in the clear, and says why', async () => {
    const logs = captureLogs();
    expect(
      await approvalsHandler('0.0.0.0', authenticator(true), new ApprovalBook(), logs.logger),
    ).toBeUndefined();
    expect(logs.lines.join('')).toContain('not a loopback address');
  });

  it('does not serve them in token-file mode, where the identity is the pod', async () => {
    const logs = captureLogs();
    expect(
      await approvalsHandler('127.0.0.1', authenticator(false), new ApprovalBook(), logs.logger),
    ).toBeUndefined();
  });
});
