import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { crdFiles } from './generated-files.ts';

const root = resolve(import.meta.dirname, '..');

describe('generated CRD YAML', () => {
  it.each(crdFiles().map((file) => [file.path, file] as const))(
    '%s is what crds/*.ts generate',
    async (path, file) => {
      const committed = await readFile(resolve(root, path), 'utf8').catch(() => '(missing)');
      expect(
        committed === file.content,
        `${path} differs from what crds/*.ts generate: run npm run gen and commit the result`,
      ).toBe(true);
    },
  );

  it('writes one CRD per kind, the same file in crds/generated and in the chart', () => {
    const files = crdFiles();
    const byName = (prefix: string) =>
      files.filter((file) => file.path.startsWith(prefix)).map((file) => file.path.slice(prefix.length));
    expect(byName('crds/generated/')).toEqual([
      'databaseaccesses.gatehouse.dev.yaml',
      'databasegateways.gatehouse.dev.yaml',
      'guardrails.gatehouse.dev.yaml',
      'maskingpolicies.gatehouse.dev.yaml',
      'approvalrequests.gatehouse.dev.yaml',
    ]);
    expect(byName('charts/gatehouse/crds/')).toEqual(byName('crds/generated/'));
    for (const file of files) {
      const crd = parse(file.content);
      expect(file.path).toContain(`/${crd.metadata.name}.yaml`);
    }
  });
});
