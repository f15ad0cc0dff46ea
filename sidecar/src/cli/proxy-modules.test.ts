import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { localProxyConfig } from '../../../test/e2e/support/clients.ts';
import { mysqlProxyConfig } from '../../../test/e2e/support/mysql.ts';
import { startProxyProcess } from '../../../test/e2e/support/proxy-process.ts';

const postgres = inject('postgres');
const mariadb = inject('mariadb');

/*
 * Every module a process keeps costs resident memory for as long as it runs (its source, its
 * compiled code, its module records): the sidecar's idle RSS is mostly code. These tests run the
 * real CLI with a loader hook that lists each module it loads, and check that the code of modes
 * the configuration does not use stays out.
 */
const RECORDER = `
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.GATEHOUSE_TEST_MODULES, loaded.join('\\n')));
`;

async function modulesLoadedBy(config: Record<string, unknown>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-modules-'));
  const recorder = join(dir, 'record-modules.mjs');
  const list = join(dir, 'modules.txt');
  writeFileSync(recorder, RECORDER);
  const proxy = await startProxyProcess(config, {
    env: {
      NODE_OPTIONS: `--import=${pathToFileURL(recorder).href}`,
      GATEHOUSE_TEST_MODULES: list,
    },
  });
  // Past the ready line, so that the start-up login and the first refreshes have loaded what they need.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await proxy.stop('SIGTERM');
  return readFileSync(list, 'utf8').split('\n');
}

const loadedMatching = (modules: readonly string[], pattern: RegExp) =>
  modules.filter((m) => pattern.test(m));

describe('gatehouse proxy: modules of unused modes are not loaded', () => {
  it('fronting PostgreSQL with local identities: no MySQL code, no JOSE, no Kubernetes client', async () => {
    const modules = await modulesLoadedBy(localProxyConfig(postgres));
    // The recorder sees the modules that are used (else an empty list would pass).
    expect(loadedMatching(modules, /sidecar\/src\/protocol\/postgres\/session\.ts$/)).toHaveLength(1);
    expect(loadedMatching(modules, /\/sidecar\/src\/(protocol|sql)\/mysql\//)).toEqual([]);
    expect(loadedMatching(modules, /sqlparser-ts|\/mysql-gate\.ts$/)).toEqual([]);
    expect(loadedMatching(modules, /node_modules\/jose\/|\/token-(file-)?authenticator\.ts$/)).toEqual([]);
    expect(loadedMatching(modules, /@kubernetes\/client-node|\/operator\/src\//)).toEqual([]);
  });

  it('fronting MySQL: no PostgreSQL session or catalog code', async () => {
    const modules = await modulesLoadedBy(mysqlProxyConfig(mariadb));
    expect(loadedMatching(modules, /sidecar\/src\/protocol\/mysql\/session\.ts$/)).toHaveLength(1);
    expect(
      loadedMatching(modules, /\/sidecar\/src\/protocol\/postgres\/(session|server|catalog-cache)\.ts$/),
    ).toEqual([]);
    expect(loadedMatching(modules, /node_modules\/jose\//)).toEqual([]);
  });

  it('with token identities: JOSE is loaded (the recorder sees lazily loaded modules)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-token-'));
    const publicKeyFile = join(dir, 'issuer.pem');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const config = {
      ...localProxyConfig(postgres),
      identity: {
        mode: 'token',
        token: { issuer: 'https://issuer.example', audience: 'gatehouse', publicKeyFile },
      },
    };
    const modules = await modulesLoadedBy(config);
    expect(loadedMatching(modules, /node_modules\/jose\//).length).toBeGreaterThan(0);
  });
});
