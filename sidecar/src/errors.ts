/**
 * An error the person running Gatehouse can act on. The CLI prints its message as one line and
 * exits with code 2; it never prints a stack trace for these.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
}

/** A configuration problem, located by file and field so the fix is obvious. */
export class ConfigError extends UserError {
  readonly file: string;
  readonly field: string;
  readonly problem: string;
  constructor(file: string, field: string, problem: string) {
    super(field ? `${file}: ${field}: ${problem}` : `${file}: ${problem}`);
    this.file = file;
    this.field = field;
    this.problem = problem;
  }
}
