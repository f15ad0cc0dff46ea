import { type Logger, pino } from 'pino';

/** A real pino logger whose JSON lines are kept in memory, so tests can read what would be logged. */
export function captureLogs(): {
  readonly logger: Logger;
  readonly lines: string[];
  records(): Record<string, unknown>[];
} {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}
