import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELM_VERSION, helm, helmBinary } from './helm.ts';

describe('helm from the Go module proxy', () => {
  let chartDir: string;

  beforeAll(async () => {
    await helmBinary();
    chartDir = await mkdtemp(join(tmpdir(), 'gatehouse-helm-'));
    await mkdir(join(chartDir, 'templates'));
    await writeFile(join(chartDir, 'Chart.yaml'), 'apiVersion: v2\nname: probe\nversion: 0.0.1\n');
    await writeFile(
      join(chartDir, 'templates', 'capabilities.yaml'),
      'kubeVersion: {{ .Capabilities.KubeVersion.Version }}\nhelmVersion: {{ .Capabilities.HelmVersion.Version }}\n',
    );
  }, 20 * 60_000);
  afterAll(async () => {
    await rm(chartDir, { recursive: true, force: true });
  });

  it('reports the release it was built from', async () => {
    const result = await helm(['version', '--template', '{{ .Version }}']);
    expect(result).toMatchObject({ code: 0, stdout: HELM_VERSION });
  });

  it('renders for the Kubernetes release of its client libraries, as an official build does', async () => {
    const result = await helm(['template', chartDir]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('kubeVersion: v1.37.0');
    expect(result.stdout).toContain(`helmVersion: ${HELM_VERSION}`);
  });

  it('keeps its state out of the home directory of whoever runs the tests', async () => {
    const result = await helm(['env']);
    expect(result.code).toBe(0);
    for (const variable of ['HELM_CACHE_HOME', 'HELM_CONFIG_HOME', 'HELM_DATA_HOME']) {
      expect(result.stdout).toMatch(new RegExp(`${variable}=".*/gatehouse/helm-${HELM_VERSION}/home/`));
    }
  });

  it('says why it failed', async () => {
    const result = await helm(['template', join(chartDir, 'no-such-chart')]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('no-such-chart');
  });
});
