import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseChainLine } from '../audit/chain.ts';
import { OcsfMapper } from '../audit/ocsf.ts';
import { verifyAuditLogFile } from '../audit/verify.ts';
import { UserError } from '../errors.ts';
import { describeFileError, exists, readPublicKeys } from './audit-files.ts';
import { summarize } from './audit-verify.ts';
import { parseCliArgs } from './parse-cli-args.ts';
import { packageVersion } from './version.ts';

/** The options of `gatehouse audit export`, also listed by `gatehouse audit --help`. */
export const AUDIT_EXPORT_USAGE = `  --format ocsf|jsonl   ocsf (default): one OCSF 1.5.0 event a line (docs/compliance.md);
                        jsonl: the audit records themselves, as written
  --from DATE           only records at or after DATE (ISO 8601: 2026-12-01 or 2026-12-01T08:00:00Z)
  --to DATE             only records before DATE
  --public-key PEMFILE  pin the signing key when verifying (as in audit verify; repeatable)
  --allow-unsealed      accept logs that do not end in a seal (still being written)
  --no-verify           export without verifying the chains first (records that do not parse are
                        skipped, with a warning)
  -h, --help            show this text

Verifies every FILE first, as gatehouse audit verify does (FILE.head is checked when it exists), and
exports nothing when one fails: exits 1 naming the file and the first bad record. Writes the events
to stdout in the order of the files given. Exits 0 when all went out, 2 for a usage error or a file
that cannot be read.`;

const USAGE = `usage: gatehouse audit export [--format ocsf|jsonl] [--from DATE] [--to DATE] FILE...

${AUDIT_EXPORT_USAGE}
`;

interface Output {
  write(text: string): boolean | unknown;
  once?(event: 'drain', listener: () => void): unknown;
}

interface ExportOptions {
  readonly files: readonly string[];
  readonly format: 'ocsf' | 'jsonl';
  readonly from: number;
  readonly to: number;
  readonly verify: boolean;
  readonly publicKeys: readonly string[];
  readonly allowUnsealed: boolean;
}

/** `gatehouse audit export`: returns the exit code (0 exported, 1 a chain is broken, 2 usage or I/O). */
export async function runAuditExport(
  argv: string[],
  io: { readonly stdout: Output; readonly stderr: Output } = process,
): Promise<number> {
  let options: ExportOptions;
  try {
    const parsed = parseOptions(argv);
    if (parsed === 'help') {
      io.stdout.write(USAGE);
      return 0;
    }
    options = { ...parsed, publicKeys: await readPublicKeys(parsed.keyFiles) };
  } catch (error) {
    io.stderr.write(`gatehouse: ${(error as Error).message}\n`);
    return 2;
  }

  if (options.verify) {
    let broken = 0;
    for (const file of options.files) {
      try {
        const head = (await exists(`${file}.head`)) ? await readFile(`${file}.head`, 'utf8') : undefined;
        const result = await verifyAuditLogFile(file, {
          publicKeys: options.publicKeys,
          head,
          allowUnsealed: options.allowUnsealed,
        });
        if (!result.ok) {
          io.stderr.write(`${file}: ${summarize(result)}\n`);
          broken++;
        }
      } catch (error) {
        io.stderr.write(`${file}: ${describeFileError(error)}\n`);
        return 2;
      }
    }
    if (broken > 0) {
      io.stderr.write(
        `gatehouse: nothing exported: ${broken} of ${options.files.length} file(s) failed verification (--no-verify exports them anyway)\n`,
      );
      return 1;
    }
  }

  const version = packageVersion();
  for (const file of options.files) {
    const mapper = new OcsfMapper({ productVersion: version, source: file });
    let skipped = 0;
    try {
      const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
      for await (const line of lines) {
        if (line === '') continue;
        const parsed = parseChainLine(line);
        if (!parsed.ok) {
          skipped++;
          continue;
        }
        const time = Date.parse(String(parsed.record['time']));
        if (time < options.from || time >= options.to) continue;
        const out = options.format === 'jsonl' ? line : JSON.stringify(mapper.map(parsed));
        if (io.stdout.write(`${out}\n`) === false && io.stdout.once) {
          await new Promise<void>((resolve) => io.stdout.once!('drain', resolve));
        }
      }
    } catch (error) {
      io.stderr.write(`${file}: ${describeFileError(error)}\n`);
      return 2;
    }
    if (skipped > 0)
      io.stderr.write(
        `${file}: skipped ${skipped} line(s) that are not whole audit records (torn by a crash, or altered)\n`,
      );
  }
  return 0;
}

function parseOptions(argv: string[]): (Omit<ExportOptions, 'publicKeys'> & { keyFiles: string[] }) | 'help' {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        format: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        'public-key': { type: 'string', multiple: true },
        'allow-unsealed': { type: 'boolean' },
        'no-verify': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'audit export',
  );
  if (values.help) return 'help';
  const format = values.format ?? 'ocsf';
  if (format !== 'ocsf' && format !== 'jsonl')
    throw new UserError(`--format must be ocsf or jsonl, not "${format}"`);
  if (positionals.length === 0)
    throw new UserError('give one or more audit log FILEs (see gatehouse audit export --help)');
  const from = values.from === undefined ? Number.NEGATIVE_INFINITY : parseDate('--from', values.from);
  const to = values.to === undefined ? Number.POSITIVE_INFINITY : parseDate('--to', values.to);
  if (from >= to) throw new UserError(`--from ${values.from} is not before --to ${values.to}`);
  return {
    files: positionals,
    format,
    from,
    to,
    verify: values['no-verify'] !== true,
    keyFiles: values['public-key'] ?? [],
    allowUnsealed: values['allow-unsealed'] === true,
  };
}

/** ISO 8601 only: a date alone is midnight UTC; anything Date.parse guesses at is refused. */
export function parseDate(flag: string, text: string): number {
  const form = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;
  const ms = form.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms))
    throw new UserError(
      `${flag} must be an ISO 8601 date or time with a zone (2026-12-01, 2026-12-01T08:00:00Z), not "${text}"`,
    );
  return ms;
}
