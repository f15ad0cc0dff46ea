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
  --server URL          read the collector's store (docs/collector.md) instead of FILEs, with a
                        reader's --token JWT, or --user NAME and --password P (or $GATEHOUSE_PASSWORD);
                        --from defaults to a day before --to, --to to now
  --ca FILE             with --server: the CA (PEM) that verifies an https collector instead of the
                        system's (default $GATEHOUSE_COLLECTOR_CA; docs/collector.md)
  -h, --help            show this text

Verifies every FILE first, as gatehouse audit verify does (FILE.head is checked when it exists), and
exports nothing when one fails: exits 1 naming the file and the first bad record. Writes the events
to stdout in the order of the files given. With --server, the collector has verified each source's
chain as it arrived: a source it found broken, gapped or signed by a foreign key stops the export
before anything is written (exit 1, naming it; --no-verify exports anyway), each line is checked
against its own hash again, and the events come out in time order, an hour of records at a time.
Exits 0 when all went out, 2 for a usage error or a file or server that cannot be read.`;

const USAGE = `usage: gatehouse audit export [--format ocsf|jsonl] [--from DATE] [--to DATE] FILE...
       gatehouse audit export [--format ocsf|jsonl] [--from DATE] [--to DATE] --server URL (--token JWT | --user NAME)

${AUDIT_EXPORT_USAGE}
`;

interface Output {
  write(text: string): boolean | unknown;
  once?(event: 'drain', listener: () => void): unknown;
}

interface ExportOptions {
  readonly files: readonly string[];
  /** With --server: the collector and the reader's credentials. */
  readonly server?: {
    readonly url: string;
    readonly reader: { readonly token?: string; readonly user?: string; readonly password?: string };
    /** --ca FILE: the CA file that verifies the collector (else $GATEHOUSE_COLLECTOR_CA, else the system's). */
    readonly caFile?: string;
  };
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

  if (options.server !== undefined) return exportFromCollector(options, options.server, io);

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
        server: { type: 'string' },
        ca: { type: 'string' },
        token: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'audit export',
  );
  if (values.help) return 'help';
  const format = values.format ?? 'ocsf';
  if (format !== 'ocsf' && format !== 'jsonl')
    throw new UserError(`--format must be ocsf or jsonl, not "${format}"`);
  const server = values.server;
  if (positionals.length > 0 === (server !== undefined))
    throw new UserError(
      'give one or more audit log FILEs, or --server URL (the collector), one of the two (see gatehouse audit export --help)',
    );
  if (server === undefined && (values.token ?? values.user ?? values.password ?? values.ca) !== undefined)
    throw new UserError('--token, --user, --password and --ca go with --server');
  if (server !== undefined && !/^https?:\/\/[^/]/.test(server))
    throw new UserError(`--server wants the collector's http(s) URL, not "${server}"`);
  const nowOr = (fallback: number) => (server === undefined ? fallback : Date.now());
  const to = values.to === undefined ? nowOr(Number.POSITIVE_INFINITY) : parseDate('--to', values.to);
  const from =
    values.from === undefined
      ? server === undefined
        ? Number.NEGATIVE_INFINITY
        : to - 86_400_000
      : parseDate('--from', values.from);
  if (from >= to) throw new UserError(`--from ${values.from} is not before --to ${values.to}`);
  return {
    files: positionals,
    ...(server !== undefined && {
      server: {
        url: server,
        reader:
          values.token === undefined && values.user === undefined
            ? missingReader()
            : {
                ...(values.token !== undefined && { token: values.token }),
                ...(values.user !== undefined && { user: values.user }),
                ...(values.password !== undefined && { password: values.password }),
              },
        ...(values.ca !== undefined && { caFile: values.ca }),
      },
    }),
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

const HOUR_MS = 3_600_000;

/**
 * The collector's records of the period, an hour at a time so that memory holds one hour, each hour
 * in time order (the API pages newest first). Refuses to start while a source's chain is damaged.
 */
async function exportFromCollector(
  options: ExportOptions,
  server: NonNullable<ExportOptions['server']>,
  io: { readonly stdout: Output; readonly stderr: Output },
): Promise<number> {
  // Loaded here, not at the top: the proxy, which imports this command's usage, never loads collector code.
  const [{ CollectorClient, readerAuthorization, sourceName }, { collectorCa }] = await Promise.all([
    import('../../../operator/src/collector/collector-client.ts'),
    import('../../../operator/src/collector/collector-http.ts'),
  ]);
  let collector: InstanceType<typeof CollectorClient>;
  try {
    collector = new CollectorClient(
      server.url,
      readerAuthorization(server.reader),
      collectorCa(server.caFile),
    );
  } catch (error) {
    io.stderr.write(`gatehouse: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    if (options.verify) {
      const damaged = (await collector.sources()).filter((s) => s.status !== 'ok');
      if (damaged.length > 0) {
        for (const s of damaged)
          io.stderr.write(`${sourceName(s)}: ${s.status}${s.reason ? `: ${s.reason}` : ''}\n`);
        io.stderr.write(
          `gatehouse: nothing exported: the collector found ${damaged.length} source(s) damaged (--no-verify exports anyway)\n`,
        );
        return 1;
      }
    }
    const version = packageVersion();
    const mappers = new Map<string, OcsfMapper>();
    let torn = 0;
    for (let start = options.from; start < options.to; start += HOUR_MS) {
      const end = Math.min(start + HOUR_MS, options.to);
      const hour: { source: string; seq: number; time: number; line: string }[] = [];
      const query = new URLSearchParams({
        since: new Date(start).toISOString(),
        until: new Date(end).toISOString(),
        limit: '1000',
      });
      for await (const item of collector.records(query))
        hour.push({
          source: sourceName(item.source),
          seq: item.seq,
          time: Date.parse(item.time),
          line: item.line,
        });
      hour.sort(
        (a, b) => a.time - b.time || (a.source < b.source ? -1 : a.source > b.source ? 1 : a.seq - b.seq),
      );
      for (const record of hour) {
        const parsed = parseChainLine(record.line);
        if (!parsed.ok) {
          // A line torn by a crash is part of a verified chain (a log.recover record follows it).
          if (parsed.torn || !options.verify) {
            torn++;
            continue;
          }
          io.stderr.write(
            `gatehouse: ${record.source} record ${record.seq} does not match its own hash in the collector's store; stopping (--no-verify skips it)\n`,
          );
          return 1;
        }
        let out = record.line;
        if (options.format === 'ocsf') {
          let mapper = mappers.get(record.source);
          if (mapper === undefined) {
            mapper = new OcsfMapper({ productVersion: version, source: record.source });
            mappers.set(record.source, mapper);
          }
          out = JSON.stringify(mapper.map(parsed));
        }
        if (io.stdout.write(`${out}\n`) === false && io.stdout.once)
          await new Promise<void>((resolve) => io.stdout.once!('drain', resolve));
      }
    }
    if (torn > 0)
      io.stderr.write(
        `gatehouse: skipped ${torn} line(s) that are not whole audit records (torn by a crash${options.verify ? '' : ', or altered'})\n`,
      );
  } catch (error) {
    io.stderr.write(`gatehouse: ${(error as Error).message}\n`);
    return 2;
  }
  return 0;
}

function missingReader(): never {
  throw new UserError('--server needs a reader: --token JWT, or --user NAME with --password P');
}
