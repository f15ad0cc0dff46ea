/**
 * A pino destination for a person at a terminal: each JSON record becomes one line,
 * `22:41:07 WARN  message  key=value …`. Collectors keep reading JSON; this is only for a TTY.
 */
export function prettyDestination(
  out: { write(text: string): unknown },
  options: { colors: boolean },
): { write(record: string): void } {
  return {
    write(record: string) {
      out.write(`${formatRecord(record, options.colors)}\n`);
    },
  };
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '90' },
  20: { name: 'DEBUG', color: '36' },
  30: { name: 'INFO', color: '32' },
  40: { name: 'WARN', color: '33' },
  50: { name: 'ERROR', color: '31' },
  60: { name: 'FATAL', color: '35' },
};

/** Fields every record carries, which a person at a terminal does not need to read again. */
const IMPLIED = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

export function formatRecord(record: string, colors: boolean): string {
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(record) as Record<string, unknown>;
  } catch {
    return record.trimEnd();
  }
  const level = LEVELS[fields['level'] as number] ?? { name: String(fields['level']), color: '0' };
  const time = typeof fields['time'] === 'string' ? fields['time'].slice(11, 19) : '';
  const label = level.name.padEnd(5);
  const extras = Object.entries(fields)
    .filter(([key]) => !IMPLIED.has(key))
    .map(([key, value]) => `${key}=${formatValue(value)}`);
  const parts = [
    time,
    colors ? `\x1b[${level.color}m${label}\x1b[0m` : label,
    String(fields['msg'] ?? ''),
  ].filter((part) => part !== '');
  const line = parts.join(' ');
  if (extras.length === 0) return line;
  const details = extras.join(' ');
  return `${line}  ${colors ? `\x1b[2m${details}\x1b[0m` : details}`;
}

function formatValue(value: unknown): string {
  // pino serialises errors as objects; their message is what a person reads.
  if (typeof value === 'object' && value !== null && 'message' in value)
    return formatValue((value as { message: unknown }).message);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return typeof value === 'string' && /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}
