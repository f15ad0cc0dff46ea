import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { parseProxyConfig } from './load.ts';

const BASE =
  'upstream:\n  url: postgres://app:x@db:5432/shop\nidentity:\n  mode: local\n  local:\n    users: [{name: demo, password: demo}]\n';

describe('audit.http and policy.changedBy settings', () => {
  it('applies the defaults and resolves the token', () => {
    process.env['GATEHOUSE_TEST_HEC_TOKEN'] = 'from-env';
    const config = parseProxyConfig(
      `${BASE}audit:\n  http:\n    url: https://splunk.example:8088/services/collector/event\n    shape: splunk-hec\n    token: {env: GATEHOUSE_TEST_HEC_TOKEN}\npolicy:\n  changedBy: alice@example.com\n`,
      'g.yaml',
    );
    expect(config.audit.http).toEqual({
      url: 'https://splunk.example:8088/services/collector/event',
      shape: 'splunk-hec',
      format: 'records',
      token: 'from-env',
      batchRecords: 500,
      batchIntervalMs: 1000,
      maxBufferedRecords: 100_000,
      timeoutMs: 10_000,
    });
    expect(config.policyChangedBy).toBe('alice@example.com');
    expect(parseProxyConfig(BASE, 'g.yaml').audit.http).toBeUndefined();
  });

  it.each([
    ['url: ftp://x/', /audit\.http\.url.*must be an http:\/\/ or https:\/\/ URL/],
    ['url: not a url', /audit\.http\.url.*must be an http:\/\/ or https:\/\/ URL/],
    ['url: http://x/\n    shape: syslog', /audit\.http\.shape/],
    ['url: http://x/\n    batchRecords: 0', /audit\.http\.batchRecords/],
    ['url: http://x/\n    bogus: 1', /audit\.http/],
  ])('refuses %j', (http, message) => {
    expect(() => parseProxyConfig(`${BASE}audit:\n  http:\n    ${http}\n`, 'g.yaml')).toThrow(ConfigError);
    expect(() => parseProxyConfig(`${BASE}audit:\n  http:\n    ${http}\n`, 'g.yaml')).toThrow(message);
  });
});
