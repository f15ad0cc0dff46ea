import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../../test/harness/free-port.ts';
import { kubeconfigFor } from './testdata/kubeconfig.ts';

/**
 * `gatehouse status` when the API server cannot be used: one line naming the server and the cause.
 * An HTTPS server with the harness's certificate stands in for an API server that refuses the
 * credentials (401) or the permission (403), answering with a Kubernetes Status as one does.
 */
const MAIN = resolve(import.meta.dirname, '../../../sidecar/src/main.ts');
const tls = inject('tls');
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-status-'));
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer(
    { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
    (request, response) => {
      const forbidden = request.headers.authorization === 'Bearer limited';
      const status = forbidden ? 403 : 401;
      response.writeHead(status, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: forbidden
            ? 'databaseaccesses.gatehouse.dev is forbidden: User "limited" cannot list resource "databaseaccesses" in API group "gatehouse.dev" at the cluster scope'
            : 'Unauthorized',
          reason: forbidden ? 'Forbidden' : 'Unauthorized',
          code: status,
        }),
      );
    },
  );
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolveClose) => server.close(resolveClose));
  rmSync(dir, { recursive: true, force: true });
});

function status(kubeconfig: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, kubeconfig);
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [MAIN, 'status', '--kubeconfig', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

describe('gatehouse status against an API server it cannot use', () => {
  it('names the server and "connection refused" when nothing listens', async () => {
    const port = await freePort();
    expect(await status(kubeconfigFor(`https://127.0.0.1:${port}`))).toEqual({
      code: 2,
      stdout: '',
      stderr: `gatehouse: cannot reach the Kubernetes API server https://127.0.0.1:${port}: connection refused (ECONNREFUSED)\n`,
    });
  });

  it('says TLS when the server certificate is not trusted', async () => {
    const result = await status(kubeconfigFor(url));
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(
      new RegExp(
        `^gatehouse: cannot reach the Kubernetes API server ${url}: TLS: [^\\n]*certificate[^\\n]* \\((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\\)\\n$`,
      ),
    );
  });

  it('says 401 when the credentials are refused', async () => {
    expect(await status(kubeconfigFor(url, { caFile: tls.caFile, token: 'expired' }))).toEqual({
      code: 2,
      stdout: '',
      stderr: `gatehouse: Kubernetes API server ${url}: 401 Unauthorized: the kubeconfig's credentials were refused (expired or wrong token or certificate?)\n`,
    });
  });

  it("says 403 with the server's reason when a permission is missing", async () => {
    expect(await status(kubeconfigFor(url, { caFile: tls.caFile, token: 'limited' }))).toEqual({
      code: 2,
      stdout: '',
      stderr: `gatehouse: Kubernetes API server ${url}: 403 Forbidden: databaseaccesses.gatehouse.dev is forbidden: User "limited" cannot list resource "databaseaccesses" in API group "gatehouse.dev" at the cluster scope\n`,
    });
  });
});
