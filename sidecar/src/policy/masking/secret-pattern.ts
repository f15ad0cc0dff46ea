/*
 * Credentials recognisable by their shape alone. Each alternative is anchored on a literal prefix, so
 * the regular expression engine skips ordinary text quickly.
 */
const ALTERNATIVES = [
  // JSON Web Tokens (and JWE): base64url header and payload that both start with `{"`.
  String.raw`eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_.-]*`,
  // AWS access key ids (long-term, temporary and the other unique-id prefixes).
  String.raw`\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b`,
  // GitHub personal, OAuth, user-to-server, server-to-server and refresh tokens.
  String.raw`\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b`,
  String.raw`\bgithub_pat_[A-Za-z0-9_]{22,255}\b`,
  String.raw`\bglpat-[A-Za-z0-9_-]{20,}`,
  String.raw`\bxox[abposr]-[A-Za-z0-9-]{10,}`,
  String.raw`\bAIza[0-9A-Za-z_-]{35}`,
  String.raw`\bnpm_[A-Za-z0-9]{36}\b`,
  String.raw`\bhf_[A-Za-z0-9]{30,}\b`,
  String.raw`\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`,
  String.raw`\bsk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{20,}`,
  // Prefixed API keys in the Stripe style: `sk_live_...`, `rk_test_...`, `whsec_...`, `myapp_prod_...`.
  String.raw`\b(?<generic>[a-z][a-z0-9]{1,9}_(?:(?:live|test|prod|secret|key|api)_)?[A-Za-z0-9]{20,})\b`,
  // PEM private keys, to the end marker or the end of the text.
  String.raw`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)`,
  // Password hashes: bcrypt, argon2, crypt(3) MD5/SHA/yescrypt, PostgreSQL SCRAM and md5, Django.
  String.raw`\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}`,
  String.raw`\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+(?:\$[A-Za-z0-9+/]+)?`,
  String.raw`\$(?:1|5|6|y|gy|7)\$[^\s"',;)}\]]{8,}`,
  String.raw`\bSCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+`,
  String.raw`\bmd5[0-9a-f]{32}\b`,
  String.raw`\bpbkdf2_sha(?:1|256|512)\$\d+\$[^\s"',;)}\]]+`,
];

/** Matches any credential shape; global, so callers reset lastIndex. */
export const SECRET_PATTERN = new RegExp(ALTERNATIVES.join('|'), 'g');

/**
 * The generic `prefix_body` alternative (named `generic`) must not flag long snake_case words: unless
 * the middle word says live, test, prod or secret, the body must mix upper case, lower case and
 * digits, as random keys of 20 or more base-62 characters almost always do.
 */
export function plausibleSecret(match: RegExpExecArray): boolean {
  const generic = match.groups?.['generic'];
  if (generic === undefined) return true;
  const parts = /^[a-z0-9]+_(?:(live|test|prod|secret|key|api)_)?([A-Za-z0-9]+)$/.exec(generic)!;
  if (parts[1] === 'live' || parts[1] === 'test' || parts[1] === 'prod' || parts[1] === 'secret') return true;
  const body = parts[2]!;
  return /[0-9]/.test(body) && /[a-z]/.test(body) && /[A-Z]/.test(body);
}
