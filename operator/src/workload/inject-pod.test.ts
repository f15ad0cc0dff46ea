import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, test } from 'vitest';
import { parse, stringify } from 'yaml';
import { ANNOTATION_INJECTED, ANNOTATION_SPEC_HASH } from '../sidecar-layout.ts';
import type { DatabaseAccess } from './database-access.ts';
import { ANNOTATION_INJECTED_RESOURCES, type InjectInput, injectPod } from './inject-pod.ts';
import type { JsonPatchOperation } from './json-patch.ts';
import type { ServerVersion } from './server-version.ts';
import { sidecarContainerName } from './sidecar-container-name.ts';

/**
 * Golden cases: testdata/<case>/ holds pod.yaml and access.yaml (input), options.yaml (image and
 * serverVersion, optional), expected.yaml (the pod out), expected-conflicts.yaml and
 * expected-skipped.yaml (when there are any). UPDATE_GOLDEN=1 rewrites the expected files; review the diff.
 */
const TESTDATA = join(import.meta.dirname, 'testdata');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';
const DEFAULT_OPTIONS = { image: 'registry.invalid/gatehouse:1.0.0', serverVersion: { major: 1, minor: 37 } };

type Case = { name: string; dir: string; input: InjectInput };

function readYaml<T>(file: string): T {
  return parse(readFileSync(file, 'utf8')) as T;
}

function loadCases(): Case[] {
  return readdirSync(TESTDATA, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => {
      const dir = join(TESTDATA, entry.name);
      const optionsFile = join(dir, 'options.yaml');
      const options = existsSync(optionsFile)
        ? { ...DEFAULT_OPTIONS, ...readYaml<Partial<typeof DEFAULT_OPTIONS>>(optionsFile) }
        : DEFAULT_OPTIONS;
      return {
        name: entry.name,
        dir,
        input: {
          pod: readYaml<V1Pod>(join(dir, 'pod.yaml')),
          access: readYaml<DatabaseAccess>(join(dir, 'access.yaml')),
          image: options.image,
          serverVersion: options.serverVersion,
        },
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Writes `value` to `file` as YAML, or removes the file when there is nothing to expect. */
function writeGolden(file: string, value: unknown): void {
  if (value === undefined) rmSync(file, { force: true });
  else writeFileSync(file, stringify(value, { aliasDuplicateObjects: false, lineWidth: 0 }));
}

function readGolden(file: string): unknown {
  return existsSync(file) ? readYaml(file) : undefined;
}

/** Applies the whole-field operations podPatch emits, as the API server would. */
function applyPatch(pod: V1Pod, patch: JsonPatchOperation[]): V1Pod {
  const result = structuredClone(pod) as unknown as Record<string, Record<string, unknown>>;
  for (const operation of patch) {
    const [, section, field] = operation.path.split('/') as [string, string, string];
    const parent = result[section]!;
    if (operation.op === 'remove') {
      expect(parent).toHaveProperty(field);
      delete parent[field];
    } else {
      expect(field in parent).toBe(operation.op === 'replace');
      parent[field] = operation.value;
    }
  }
  return result as unknown as V1Pod;
}

const cases = loadCases();

describe('injectPod golden cases', () => {
  test('there are enough cases to cover the behaviours', () => {
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  test.each(cases)('$name', ({ dir, input }) => {
    const before = structuredClone(input.pod);
    const result = injectPod(input);
    expect(input.pod, 'the input pod is not modified').toEqual(before);
    const conflicts = result.conflicts.length > 0 ? result.conflicts : undefined;
    if (UPDATE) {
      writeGolden(join(dir, 'expected.yaml'), result.pod);
      writeGolden(join(dir, 'expected-conflicts.yaml'), conflicts);
      writeGolden(join(dir, 'expected-skipped.yaml'), result.skipped);
    }
    expect(result.pod).toEqual(readGolden(join(dir, 'expected.yaml')));
    expect(conflicts).toEqual(readGolden(join(dir, 'expected-conflicts.yaml')));
    expect(result.skipped).toEqual(readGolden(join(dir, 'expected-skipped.yaml')));
    expect(applyPatch(input.pod, result.patch)).toEqual(result.pod);
    if (result.skipped === undefined) expect(result.patch).not.toEqual([]);
    else if (result.skipped !== 'conflict') expect(result.patch).toEqual([]);
  });
});

describe('injectPod is idempotent', () => {
  const versions: ServerVersion[] = [
    { major: 1, minor: 28 },
    { major: 1, minor: 37 },
  ];
  const accesses = cases.map((c) => c.input.access);

  test.each(cases)('inject(inject(pod)) == inject(pod), for $name on both kinds of server', ({ input }) => {
    for (const serverVersion of versions) {
      const once = injectPod({ ...input, serverVersion });
      const twice = injectPod({ ...input, pod: once.pod, serverVersion });
      expect(twice.pod).toEqual(once.pod);
      expect(twice.patch).toEqual([]);
    }
  });

  test.each(cases)('injecting another access (or server) replaces, never adds: $name', ({ input }) => {
    for (const first of versions) {
      for (const second of versions) {
        for (const other of accesses) {
          const earlier = injectPod({ ...input, access: other, serverVersion: first });
          const later = injectPod({ ...input, pod: earlier.pod, serverVersion: second });
          const direct = injectPod({ ...input, serverVersion: second });
          // Conflicts come from the app's own pod, so they are the same whatever was injected before.
          expect(later.conflicts).toEqual(direct.conflicts);
          if (direct.skipped === 'opted-out' || direct.skipped === 'not-selected') continue;
          expect(later.pod).toEqual(direct.pod);
        }
      }
    }
  });
});

describe('injectPod details', () => {
  const [first] = cases;
  test('the projected token is mounted into the sidecar only', () => {
    const { pod } = injectPod({ ...first!.input });
    const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    const mounting = all.filter((container) =>
      container.volumeMounts?.some((mount) => mount.name === 'gatehouse-token'),
    );
    expect(mounting.map((container) => container.name)).toEqual([
      sidecarContainerName(first!.input.access.metadata.name),
    ]);
  });

  test("the namespace's audit signing key is mounted read-only into the sidecar only", () => {
    const { pod } = injectPod({ ...first!.input });
    const volume = pod.spec?.volumes?.find((v) => v.name === 'gatehouse-audit-signing-key');
    expect(volume?.secret?.secretName).toBe('gatehouse-audit-signing-key');
    const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    const mounts = all.flatMap((container) =>
      (container.volumeMounts ?? [])
        .filter((mount) => mount.name === 'gatehouse-audit-signing-key')
        .map((mount) => ({ container: container.name, path: mount.mountPath, readOnly: mount.readOnly })),
    );
    expect(mounts).toEqual([
      {
        container: sidecarContainerName(first!.input.access.metadata.name),
        path: '/etc/gatehouse/audit-signing-key',
        readOnly: true,
      },
    ]);
  });

  test('a changed access changes the spec hash, the same access keeps it', () => {
    const { input } = first!;
    const hash = (access: DatabaseAccess) =>
      injectPod({ ...input, access }).pod.metadata?.annotations?.[ANNOTATION_SPEC_HASH];
    const same = hash(structuredClone(input.access));
    expect(same).toBe(hash(input.access));
    const resized = structuredClone(input.access);
    resized.spec.sidecar = { ...resized.spec.sidecar, resources: { limits: { memory: '1Gi' } } };
    expect(hash(resized)).not.toBe(same);
    expect(
      injectPod({ ...input, image: 'registry.invalid/gatehouse:2' }).pod.metadata?.annotations,
    ).not.toEqual(injectPod(input).pod.metadata?.annotations);
  });

  test('annotations name the access and record what was added', () => {
    const { input } = first!;
    const annotations = injectPod(input).pod.metadata?.annotations ?? {};
    expect(annotations[ANNOTATION_INJECTED]).toBe(input.access.metadata.name);
    expect(JSON.parse(annotations[ANNOTATION_INJECTED_RESOURCES]!)).toMatchObject({
      container: sidecarContainerName(input.access.metadata.name),
    });
  });
});
