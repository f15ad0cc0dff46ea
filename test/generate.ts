// `npm run gen`: writes every generated file of the API: the CRD YAML from crds/*.ts (crds/generated
// and the chart's crds/), the plain manifests rendered from the chart, the Argo CD health-check
// config built from charts/gatehouse/argocd/health.lua, and the collector API's OpenAPI description
// (docs/collector-openapi.json). Helm is built on first use (see helm.ts).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { crdFiles } from '../crds/generated-files.ts';
import { collectorOpenApiFile } from '../operator/src/collector/openapi.ts';
import { argoCdConfigFiles } from './harness/argocd-health.ts';
import { plainManifests } from './harness/helm.ts';

const root = resolve(import.meta.dirname, '..');
const files = [
  ...crdFiles(),
  // After the CRDs: the chart's crds/ folder is part of what helm renders.
  ...(await argoCdConfigFiles()),
  collectorOpenApiFile(),
];
for (const file of files) await write(file.path, file.content);
await write('charts/manifests/gatehouse.yaml', await plainManifests());

async function write(path: string, content: string): Promise<void> {
  const target = resolve(root, path);
  const current = await readFile(target, 'utf8').catch(() => undefined);
  if (current === content) return;
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, content);
  process.stdout.write(`wrote ${path}\n`);
}
