/** PostgreSQL keeps at most 63 bytes of an application name (NAMEDATALEN - 1); so does the audit. */
const MAX_BYTES = 63;

/**
 * The application name a client declared, as the audit keeps it: control characters dropped (a log
 * line must not be forged through it), cut to 63 bytes on a character boundary, absent when empty.
 */
export function clientApplication(declared: string | undefined, maxBytes = MAX_BYTES): string | undefined {
  if (declared === undefined) return undefined;
  const clean = declared.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '');
  if (clean === '') return undefined;
  const bytes = Buffer.from(clean, 'utf8');
  if (bytes.length <= maxBytes) return clean;
  return bytes
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}

/** `{application}` for a session context, or nothing when the client declared none. */
export function clientApplicationField(declared: string | undefined): { application?: string } {
  const application = clientApplication(declared);
  return application === undefined ? {} : { application };
}

/** Bounds of what a session declares of its work: a sentence of purpose, an id of its run. */
export const MAX_PURPOSE_BYTES = 200;
export const MAX_RUN_ID_BYTES = 128;

/**
 * `{purpose, runId}` for a session context from what the workload declared (`gatehouse.purpose`,
 * `gatehouse.run_id`), cleaned and bounded as `application` is; an empty value declares none.
 */
export function declaredWorkFields(
  purpose: string | undefined,
  runId: string | undefined,
): { purpose?: string; runId?: string } {
  const p = clientApplication(purpose, MAX_PURPOSE_BYTES);
  const r = clientApplication(runId, MAX_RUN_ID_BYTES);
  return { ...(p !== undefined && { purpose: p }), ...(r !== undefined && { runId: r }) };
}
