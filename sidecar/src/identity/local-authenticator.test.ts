import { describe, expect, it } from 'vitest';
import { UserError } from '../errors.ts';
import { AuthError } from './identity.ts';
import { createLocalAuthenticator } from './local-authenticator.ts';
import { captureLogs } from './log-capture.ts';

const users = [
  { name: 'ada', password: 'correct horse battery staple', groups: ['dba'] },
  { name: 'bob', password: 'hunter2' },
];

async function refusal(attempt: Promise<unknown>): Promise<AuthError> {
  const error = await attempt.then(
    () => expect.fail('the user was accepted'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthError);
  return error as AuthError;
}

describe('local mode', () => {
  it('accepts a listed user with the right password', async () => {
    const auth = createLocalAuthenticator({ users }, { logger: captureLogs().logger });
    expect(auth.needsPassword).toBe(true);
    expect(await auth.authenticate({ user: 'ada', password: 'correct horse battery staple' })).toEqual({
      subject: 'local:ada',
      groups: ['dba'],
      method: 'local',
    });
    expect(await auth.authenticate({ user: 'bob', password: 'hunter2' })).toEqual({
      subject: 'local:bob',
      groups: [],
      method: 'local',
    });
  });

  it('gives a wrong password and an unknown user the same answer', async () => {
    const auth = createLocalAuthenticator({ users }, { logger: captureLogs().logger });
    const attempts = [
      { user: 'ada', password: 'hunter2' },
      { user: 'ada', password: 'correct horse battery staple ' },
      { user: 'ada', password: '' },
      { user: 'ada' },
      { user: 'mallory', password: 'hunter2' },
      { user: 'mallory' },
    ];
    for (const credentials of attempts) {
      const refused = await refusal(auth.authenticate(credentials));
      expect(refused.message).toBe(`password authentication failed for user "${credentials.user}"`);
      expect(refused.sqlstate).toBe('28P01');
    }
  });

  it('warns loudly at creation that local users are for development, without the passwords', () => {
    const logs = captureLogs();
    createLocalAuthenticator({ users }, { logger: logs.logger });
    expect(logs.records()).toEqual([
      expect.objectContaining({ level: 40, users: 2, msg: expect.stringMatching(/for development only/) }),
    ]);
    expect(logs.lines.join('')).not.toContain('hunter2');
  });

  it('refuses a config that lists a user twice', () => {
    const twice = [...users, { name: 'ada', password: 'other' }];
    expect(() => createLocalAuthenticator({ users: twice }, { logger: captureLogs().logger })).toThrow(
      UserError,
    );
    expect(() => createLocalAuthenticator({ users: twice }, { logger: captureLogs().logger })).toThrow(
      'identity.local.users[2].name: "ada" is listed twice',
    );
  });
});
