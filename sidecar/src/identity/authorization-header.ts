/**
 * The credentials of an HTTP `Authorization` header, as a database client would give them: a bearer
 * token as the password of an empty user name, or a Basic user name and password.
 */
export function credentialsOf(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && value !== '') return { user: '', password: value };
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}
