import {
  readingRefusal,
  type ServerReading,
  UNKNOWN_READING,
  withParameter,
} from '../../sql/server-reading.ts';

/**
 * How the server reads statement text (standard_conforming_strings, client_encoding), as it last
 * reported. The gate asks it whether a text may be read differently from the analysis; it is made at
 * startup, before the session whose exchange says whether those reports are settled.
 */
export class ReportedReading {
  current: ServerReading = UNKNOWN_READING;
  /** No statement is running: the settings last reported are the ones the server reads with. */
  settled: () => boolean = () => true;

  report(name: string, value: string): void {
    this.current = withParameter(this.current, name, value);
  }

  misread(sql: string): string | undefined {
    return readingRefusal(sql, this.current, this.settled());
  }
}
