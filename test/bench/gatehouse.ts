import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import type { PostgresInfo } from '../harness/postgres.ts';
import { startBackground } from './background-process.ts';
import type { Target } from './target.ts';

const MAIN = resolve(import.meta.dirname, '../../sidecar/src/main.ts');
const START_TIMEOUT_MS = 30_000;
export const BENCH_USER = 'bench';

/**
 * The real CLI (`gatehouse proxy`) as a child process, as a user runs it: identity mode local, audit to a
 * file, admin endpoint on. It listens on a port of the kernel's choosing and names it in its first log line.
 */
export function startGatehouse(server: PostgresInfo, dir: string): Promise<Target> {
  return startGatehouseTarget(server, dir, 'gatehouse', []);
}

/**
 * The full policy path: every statement parsed, analysed and decided against the built-in guardrails
 * (every kind blocks) and a DatabaseAccess grant, its output columns traced for masking (bench_people's
 * email tokenized, its ssn redacted by auto-detection), result text scanned. The stage measurements
 * (stages.ts) judge under the same documents.
 */
export const GUARDED_POLICY: readonly unknown[] = [
  DEFAULT_GUARDRAIL,
  {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'MaskingPolicy',
    metadata: { name: 'pii' },
    // Auto-detection redacts the ssn; the email is tokenized, the costliest method per cell.
    spec: { autoDetect: true, rules: [{ columns: ['bench_people.email'], method: 'tokenize' }] },
  },
  {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'DatabaseAccess',
    metadata: { name: 'bench' },
    spec: {
      subjects: [{ kind: 'User', name: `local:${BENCH_USER}` }],
      allow: ['read', 'write'],
      guardrails: [DEFAULT_GUARDRAIL.metadata.name],
      maskingPolicies: ['pii'],
    },
  },
];

/**
 * The full policy plus approval rules that none of the bench's statements meets (DROP and TRUNCATE wait
 * for a person, with auto-approval conditions): beside gatehouse-guarded, what approvals cost the
 * sessions they never hold.
 */
export const APPROVALS_POLICY: readonly unknown[] = [
  ...GUARDED_POLICY.map((document) => {
    const d = document as { kind: string; spec: { guardrails?: string[] } };
    return d.kind === 'DatabaseAccess'
      ? { ...d, spec: { ...d.spec, guardrails: [...(d.spec.guardrails ?? []), 'bench-approvals'] } }
      : document;
  }),
  {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'Guardrail',
    metadata: { name: 'bench-approvals' },
    spec: {
      rules: [
        {
          name: 'drop-and-truncate',
          kinds: ['drop', 'truncate'],
          action: 'requireApproval',
          approval: {
            approvers: [{ kind: 'User', name: 'local:approver' }],
            autoApprove: [{ name: 'small', maxAffectedRows: 10, sensitiveColumns: 'none' }],
          },
        },
      ],
    },
  },
];

export function startApprovalsGatehouse(server: PostgresInfo, dir: string): Promise<Target> {
  return startGatehouseTarget(server, dir, 'gatehouse-approvals', APPROVALS_POLICY);
}

/** The same with the full policy (GUARDED_POLICY). */
export function startGuardedGatehouse(server: PostgresInfo, dir: string): Promise<Target> {
  return startGatehouseTarget(server, dir, 'gatehouse-guarded', GUARDED_POLICY);
}

async function startGatehouseTarget(
  server: PostgresInfo,
  dir: string,
  name: 'gatehouse' | 'gatehouse-guarded' | 'gatehouse-approvals',
  policy: readonly unknown[],
): Promise<Target> {
  const login = { user: BENCH_USER, password: randomBytes(18).toString('base64url') };
  const configFile = join(dir, `${name}.yaml`);
  const config = {
    listen: '127.0.0.1:0',
    admin: { listen: '127.0.0.1:0' },
    upstream: {
      host: server.host,
      port: server.port,
      database: server.database,
      user: server.admin.user,
      password: { value: server.admin.password },
      // Every target runs without TLS, so that all of them pay for the same work.
      tls: { mode: 'disable' },
    },
    identity: { mode: 'local', local: { users: [{ name: login.user, password: login.password }] } },
    audit: { file: join(dir, `${name}-audit.jsonl`), stdout: false },
    masking: { key: { value: randomBytes(32).toString('base64url') } },
  };
  const documents = [config, ...policy].map((document) => stringify(document)).join('---\n');
  await writeFile(configFile, documents, { mode: 0o600 });

  let onListening: (port: number) => void = () => {};
  const listening = new Promise<number>((resolveListening) => {
    onListening = resolveListening;
  });
  const gatehouse = startBackground(
    name,
    process.execPath,
    ['--liftoff-only', '--max-semi-space-size=8', MAIN, 'proxy', '--config', configFile],
    {
      cwd: dir,
      onLine(line) {
        if (!line.includes('gatehouse proxy listening')) return;
        const listen = (JSON.parse(line) as { listen?: string }).listen;
        onListening(Number(listen?.split(':').pop()));
      },
    },
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    const port = await Promise.race([
      listening,
      gatehouse.exited.then((how) => {
        throw new Error(
          `gatehouse exited (${how}) before listening: ${gatehouse.likelyCause()}\n${gatehouse.recentOutput()}`,
        );
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `gatehouse did not listen within ${START_TIMEOUT_MS} ms:\n${gatehouse.recentOutput()}`,
              ),
            ),
          START_TIMEOUT_MS,
        );
      }),
    ]);
    return {
      name,
      host: '127.0.0.1',
      port,
      login,
      pid: gatehouse.pid,
      stop: () => gatehouse.stop(),
    };
  } catch (error) {
    await gatehouse.stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
