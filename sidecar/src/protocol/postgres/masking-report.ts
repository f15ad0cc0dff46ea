import { noticeResponse } from './backend-writer.ts';

/**
 * The startup parameter by which a client asks to be told which output columns of each statement
 * were masked for it (`gatehouse mcp`'s describe_table does). Off by default: psql would print a
 * notice after every masked SELECT. What it tells is the plan the audit record already names (columns,
 * their sources and the method), about the client's own results: policy, never a value.
 */
export const REPORT_MASKING_PARAMETER = 'gatehouse.report_masking';

export const MASKING_REPORT_PREFIX = 'Gatehouse masked for this identity: ';

/** Whether a client's startup parameters ask for masking reports. */
export function wantsMaskingReport(parameters: ReadonlyMap<string, string>): boolean {
  const value = parameters.get(REPORT_MASKING_PARAMETER)?.toLowerCase();
  return value === 'on' || value === 'true' || value === '1';
}

/** The NoticeResponse sent just before a statement's CommandComplete when columns were masked. */
export function maskingReport(masked: readonly string[]): Buffer {
  return noticeResponse({
    severity: 'NOTICE',
    code: '01000',
    message: MASKING_REPORT_PREFIX + masked.join('; '),
  });
}
