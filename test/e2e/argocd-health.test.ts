import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ARGOCD_DIR, argoCdConfigFiles, runHealthCheck } from '../harness/argocd-health.ts';

type HealthCase = { inputPath: string; healthStatus: { status: string; message: string } };

const { tests } = parse(await readFile(join(ARGOCD_DIR, 'health_test.yaml'), 'utf8')) as {
  tests: HealthCase[];
};

describe('Argo CD health check (charts/gatehouse/argocd/health.lua, run by Lua 5.1)', () => {
  it.each(tests.map((test) => [test.inputPath, test] as const))('%s', async (_, test) => {
    const object = parse(await readFile(join(ARGOCD_DIR, test.inputPath), 'utf8'));
    expect(await runHealthCheck(object)).toEqual(test.healthStatus);
  });

  it('has a case for every fixture, and covers Progressing, Degraded and Healthy', async () => {
    const fixtures = (await readdir(join(ARGOCD_DIR, 'testdata'))).map((file) => `testdata/${file}`);
    expect(tests.map((test) => test.inputPath).sort()).toEqual(fixtures.sort());
    expect(new Set(tests.map((test) => test.healthStatus.status))).toEqual(
      new Set(['Progressing', 'Degraded', 'Healthy']),
    );
  });

  it('reads the object it is given, not only the fixtures: a Ready object one generation on is Progressing', async () => {
    const object = parse(await readFile(join(ARGOCD_DIR, 'testdata/healthy.yaml'), 'utf8'));
    expect((await runHealthCheck(object)).status).toBe('Healthy');
    object.metadata.generation += 1;
    expect(await runHealthCheck(object)).toEqual({
      status: 'Progressing',
      message: 'Waiting for the Gatehouse operator to observe generation 8',
    });
  });

  it('is installed by config generated from health.lua, one key per kind', async () => {
    for (const file of await argoCdConfigFiles()) {
      const committed = await readFile(resolve(ARGOCD_DIR, '../../..', file.path), 'utf8').catch(
        () => '(missing)',
      );
      expect(committed === file.content, `${file.path} is stale: run npm run gen and commit the result`).toBe(
        true,
      );
    }
    const configMap = parse(await readFile(join(ARGOCD_DIR, 'argocd-cm.yaml'), 'utf8'));
    const lua = await readFile(join(ARGOCD_DIR, 'health.lua'), 'utf8');
    expect(configMap.data).toEqual({
      'resource.customizations.health.gatehouse.dev_DatabaseAccess': lua,
      'resource.customizations.health.gatehouse.dev_DatabaseGateway': lua,
      'resource.customizations.health.gatehouse.dev_Guardrail': lua,
      'resource.customizations.health.gatehouse.dev_MaskingPolicy': lua,
    });
  });
});
