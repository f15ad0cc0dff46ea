import { describe, expect, it } from 'vitest';
import { UserError } from '../../../sidecar/src/errors.ts';
import { runOperatorCommand } from './operator-command.ts';

describe('gatehouse operator flags', () => {
  it.each([
    [[], '--sidecar-image IMAGE is required'],
    [['--sidecar-image=i', '--cert-mode=vault'], '--cert-mode is "vault"; use self or cert-manager'],
    [['--sidecar-image=i', '--leader-elect=yes'], '--leader-elect is "yes"; use true or false'],
    [['--sidecar-image=i', '--log-level=loud'], '--log-level is "loud"'],
    [['--sidecar-image=i', '--metrics-port=http'], '--metrics-port is "http"; use a port number'],
    [['--sidecar-image=i', '--webhook-port=70000'], '--webhook-port is "70000"; use a port number'],
    [['--sidecar-image=i', '--unknown-flag=1'], "Unknown option '--unknown-flag'"],
    [
      ['--sidecar-image=i', '--collector-url=gatehouse-collector:7450'],
      '--collector-url is "gatehouse-collector:7450"',
    ],
    [['--sidecar-image=i', '--collector-url=https://c/v1/records'], 'use https://HOST[:PORT]'],
    // Pods' tokens and audit records never cross the network in clear, whatever the spelling.
    ...['http://c:7450', 'HTTP://c:7450', 'http://127.0.0.1:7450', 'c:7450', 'ftp://c', '//c:7450'].map(
      (url) =>
        [['--sidecar-image=i', `--collector-url=${url}`], `--collector-url is "${url}"; use https://`] as [
          string[],
          string,
        ],
    ),
    [
      ['--sidecar-image=i', '--collector-url=https://c:7450', '--cluster-name=Prod EU'],
      '--cluster-name is "Prod EU"',
    ],
  ])('refuses %j with a sentence naming the flag', async (argv, message) => {
    const error = await runOperatorCommand(argv).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain(message);
  });
});
