import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSigningKey, publicKeyFromPem } from '../audit/signing-key.ts';
import { UserError } from '../errors.ts';
import { readAuditFileSource } from '../evidence/audit-file-source.ts';
import type { EvidenceInput, EvidenceRecord, SourceCheck } from '../evidence/evidence-input.ts';
import { buildSections, packFiles } from '../evidence/evidence-pack.ts';
import { MANIFEST_FILE, signedManifest, verifyPack } from '../evidence/pack-manifest.ts';
import { readPolicyFile } from '../evidence/policy-file.ts';
import { parseDate } from './audit-export.ts';
import { describeFileError, readPublicKeys } from './audit-files.ts';
import { parseCliArgs } from './parse-cli-args.ts';

export const EVIDENCE_USAGE = `usage: gatehouse evidence build --from DATE --to DATE --out DIR (--audit FILE... | --server URL) [options]
       gatehouse evidence verify DIR [--key PEMFILE]

build: a folder an auditor reads (index.html) and a machine checks (one JSON file a section, and
manifest.json: every file's SHA-256, signed with Ed25519). docs/compliance.md says what each section
evidences and what it does not.
  --from DATE, --to DATE  the period, [from, to): ISO 8601 (2026-12-01 or 2026-12-01T08:00:00Z)
  --out DIR               where to write the pack (a new or empty folder)
  --audit FILE            an audit log (repeatable; FILEs after the options count too). Each is
                          verified first as gatehouse audit verify does (FILE.head when it exists)
  --public-key PEMFILE    pin the audit logs' signing key (repeatable, as in audit verify)
  --allow-unsealed        accept logs that do not end in a seal (still being written)
  --server URL            the collector's store instead (docs/collector.md), with a reader's
  --token JWT               bearer token, or
  --user NAME               local user and --password P (or $GATEHOUSE_PASSWORD)
  --ca FILE                 the CA (PEM) that verifies an https collector instead of the system's
                            (default $GATEHOUSE_COLLECTOR_CA; docs/collector.md)
  --policy FILE           the proxy config or bundle in force now (in a cluster: the bundle ConfigMap's
                          gatehouse.yaml), or kubectl get ... -o yaml output: its DatabaseAccess grants
                          go into access.json, with whether its digest is the one the sources record
  --signing-key PEMFILE   the Ed25519 key that signs manifest.json (the audit.signingKeyFile kind);
                          without it a key is made for this pack only (verify then proves the pack
                          unaltered since it was built, not who built it)
exits 0 when the pack is written and every source verified; 1 when it is written but a source
failed verification (the pack says which, in chains.json and index.html); 2 for a usage error or a
file or server that cannot be read (nothing is written).

verify: checks manifest.json's signature and every file's SHA-256, and that the folder holds no file
the manifest does not list and lacks none it does.
  --key PEMFILE           the public (or private) key the manifest must be signed with
exits 0 when the pack is intact (printing whether the key was pinned), 1 when it is not (one line
per problem), 2 for a usage error.`;

interface Output {
  write(text: string): unknown;
}
type Io = { readonly stdout: Output; readonly stderr: Output; readonly env?: NodeJS.ProcessEnv };

/** `gatehouse evidence build|verify`: returns the exit code. */
export async function runEvidenceCommand(argv: string[], io: Io = process): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'build') return await build(rest, io);
    if (sub === 'verify') return await verify(rest, io);
    if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
      io.stdout.write(`${EVIDENCE_USAGE}\n`);
      return sub === undefined ? 2 : 0;
    }
    throw new UserError(
      `unknown evidence subcommand "${sub}": build or verify (see gatehouse evidence --help)`,
    );
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    io.stderr.write(`gatehouse: ${error.message}\n`);
    return 2;
  }
}

async function build(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        out: { type: 'string' },
        audit: { type: 'string', multiple: true },
        'public-key': { type: 'string', multiple: true },
        'allow-unsealed': { type: 'boolean' },
        server: { type: 'string' },
        ca: { type: 'string' },
        token: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        policy: { type: 'string' },
        'signing-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'evidence',
  );
  if (values.help) {
    io.stdout.write(`${EVIDENCE_USAGE}\n`);
    return 0;
  }
  if (values.from === undefined || values.to === undefined)
    throw new UserError('give the period: --from DATE --to DATE (see gatehouse evidence --help)');
  const from = parseDate('--from', values.from);
  const to = parseDate('--to', values.to);
  if (from >= to) throw new UserError(`--from ${values.from} is not before --to ${values.to}`);
  if (values.out === undefined) throw new UserError('give --out DIR, the folder to write the pack to');
  const files = [...(values.audit ?? []), ...positionals];
  if (files.length > 0 === (values.server !== undefined))
    throw new UserError(
      'give either --audit FILE... (audit logs) or --server URL (the collector), one of the two',
    );
  if (values.server === undefined && values.ca !== undefined)
    throw new UserError('--ca goes with --server: it verifies the collector');
  // Read before the folder is made: a CA that cannot be read writes nothing.
  const ca =
    values.server === undefined
      ? undefined
      : (await import('../../../operator/src/collector/collector-http.ts')).collectorCa(
          values.ca,
          io.env ?? process.env,
        );
  await ensureEmptyDir(values.out);
  const signingKey = await loadSigningKey(values['signing-key']);
  const policy = values.policy === undefined ? undefined : await readPolicyFile(values.policy);
  const period = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };

  let sources: SourceCheck[] = [];
  let records: EvidenceRecord[] = [];
  let policyHistory: EvidenceRecord[] = [];
  if (values.server !== undefined) {
    const { authorization } = await import('../../../operator/src/collector/audit-query-command.ts');
    const { readCollectorEvidence } = await import('../../../operator/src/collector/evidence-source.ts');
    const header = authorization({
      ...(values.token !== undefined && { token: values.token }),
      ...(values.user !== undefined && { user: values.user }),
      ...((values.password ?? io.env?.['GATEHOUSE_PASSWORD']) !== undefined && {
        password: values.password ?? io.env?.['GATEHOUSE_PASSWORD'],
      }),
    });
    ({ sources, records, policyHistory } = await readCollectorEvidence(
      values.server,
      header,
      { from: new Date(from), to: new Date(to) },
      ca,
    ));
  } else {
    const publicKeys = await readPublicKeys(values['public-key'] ?? []);
    for (const file of files) {
      let source: Awaited<ReturnType<typeof readAuditFileSource>>;
      try {
        source = await readAuditFileSource(file, {
          publicKeys,
          allowUnsealed: values['allow-unsealed'] === true,
          from,
          to,
        });
      } catch (error) {
        throw new UserError(`${file}: ${describeFileError(error)}`);
      }
      sources.push(source.check);
      records = records.concat(source.records);
      policyHistory = policyHistory.concat(source.policyHistory);
    }
  }

  const input: EvidenceInput = { period, records, policyHistory, sources, ...(policy && { policy }) };
  const builtAt = new Date().toISOString();
  const contents = packFiles(buildSections(input), builtAt);
  const manifest = signedManifest(
    contents,
    { builtAt, period, keyFromFile: values['signing-key'] !== undefined },
    signingKey,
  );
  await mkdir(values.out, { recursive: true });
  for (const [name, content] of contents) await writeFile(join(values.out, name), content);
  await writeFile(join(values.out, MANIFEST_FILE), manifest);

  const broken = sources.filter((s) => !s.ok);
  io.stdout.write(
    `wrote ${values.out}: ${records.length} records of ${sources.length} source(s), ${contents.size + 1} files, manifest signed by key ${signingKey.keyId}${values['signing-key'] === undefined ? " (made for this pack: keep manifest.json's key elsewhere, or sign with --signing-key)" : ''}\n`,
  );
  for (const source of broken) io.stderr.write(`${source.source}: ${source.summary}\n`);
  if (broken.length > 0) {
    io.stderr.write(
      `gatehouse: ${broken.length} of ${sources.length} source(s) failed verification; the pack says so (chains.json, index.html)\n`,
    );
    return 1;
  }
  return 0;
}

async function verify(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { key: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    },
    'evidence',
  );
  if (values.help) {
    io.stdout.write(`${EVIDENCE_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError('give exactly one pack DIR (see gatehouse evidence --help)');
  const dir = positionals[0]!;
  let key: string | undefined;
  if (values.key !== undefined) {
    try {
      key = publicKeyFromPem(await readFile(values.key));
    } catch (error) {
      throw new UserError(`key ${values.key}: ${describeFileError(error)}`);
    }
  }
  try {
    await readdir(dir);
  } catch (error) {
    throw new UserError(`${dir}: ${describeFileError(error)}`);
  }
  const result = await verifyPack(dir, key);
  if (!result.ok) {
    io.stdout.write(`FAILED: ${dir}: ${result.problems.length} problem(s)\n`);
    for (const problem of result.problems) io.stdout.write(`  ${problem}\n`);
    return 1;
  }
  const trust = result.pinned
    ? 'key pinned with --key'
    : result.signerKey === 'made-for-this-pack'
      ? 'key made for this pack and not pinned: proves the pack unaltered since it was signed, not who built it'
      : 'key not pinned: proves the pack consistent with the key it names; pin it with --key';
  io.stdout.write(
    `ok: ${dir}: ${result.files} files and their SHA-256 match the signed manifest (key ${result.keyId}, ${trust})\n`,
  );
  return 0;
}

async function ensureEmptyDir(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new UserError(`--out ${dir}: ${describeFileError(error)}`);
  }
  if (entries.length > 0)
    throw new UserError(
      `--out ${dir} is not empty: a pack goes into a new or empty folder, so it holds nothing its manifest does not list`,
    );
}
