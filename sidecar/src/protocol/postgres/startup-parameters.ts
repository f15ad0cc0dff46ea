import type { Identity } from '../../identity/identity.ts';

/** Settings a client may not choose at startup: they would change who the session acts as. */
const IDENTITY_SETTINGS = new Set(['role', 'session_authorization', 'is_superuser']);

/** Startup keys that are not settings, or that Gatehouse sets itself. */
const NOT_FORWARDED = new Set(['user', 'database', 'application_name', 'replication']);

export class StartupRefusal extends Error {
  override readonly name = 'StartupRefusal';
}

/** `gatehouse:SUBJECT`, within PostgreSQL's 63-byte limit so the database's logs see who it is. */
export function applicationNameFor(identity: Identity): string {
  const name = `gatehouse:${identity.subject}`;
  return Buffer.byteLength(name) <= 63
    ? name
    : Buffer.from(name)
        .subarray(0, 63)
        .toString('utf8')
        .replace(/\uFFFD$/, '');
}

/**
 * The startup parameters sent upstream: the client's own settings (client_encoding, DateStyle,
 * search_path via options, ...) minus identity changes, with application_name naming the identity.
 */
export function upstreamStartupParameters(
  client: ReadonlyMap<string, string>,
  identity: Identity,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (
    client.has('replication') &&
    client.get('replication') !== 'false' &&
    client.get('replication') !== 'off'
  ) {
    throw new StartupRefusal('replication connections are not allowed through Gatehouse');
  }
  for (const [key, value] of client) {
    // `gatehouse.*` parameters speak to the proxy (masking-report.ts), not to the database.
    if (NOT_FORWARDED.has(key) || key.startsWith('_pq_.') || key.startsWith('gatehouse.')) continue;
    if (IDENTITY_SETTINGS.has(key.toLowerCase())) {
      throw new StartupRefusal(
        `the startup parameter "${key}" changes the session identity and is not allowed`,
      );
    }
    if (key === 'options') {
      for (const setting of settingsInOptions(value)) {
        if (IDENTITY_SETTINGS.has(setting.toLowerCase())) {
          throw new StartupRefusal(
            `the startup option "${setting}" changes the session identity and is not allowed`,
          );
        }
      }
      const forwarded = withoutProxySettings(value);
      if (forwarded !== '') out[key] = forwarded;
      continue;
    }
    out[key] = value;
  }
  out['application_name'] = applicationNameFor(identity);
  return out;
}

/**
 * The setting names in a libpq `options` string: `-c name=value`, `-cname=value` and `--name=value`,
 * with backslash-escaped spaces as PostgreSQL's pg_split_opts reads them.
 */
export function settingsInOptions(options: string): string[] {
  return optionSettings(options).map(([name]) => name);
}

/**
 * A setting's value as a startup parameter or, for libpq clients that can send no parameter of their
 * own (psql), as `-c name=value` in `options`; the parameter wins.
 */
export function startupSetting(client: ReadonlyMap<string, string>, name: string): string | undefined {
  const direct = client.get(name);
  if (direct !== undefined) return direct;
  const options = client.get('options');
  return options === undefined ? undefined : optionSettings(options).find(([n]) => n === name)?.[1];
}

/** `[name, value]` of each setting in a libpq `options` string (value undefined without `=`). */
function optionSettings(options: string): [string, string | undefined][] {
  const words: string[] = [];
  let word = '';
  let escaped = false;
  for (const ch of options) {
    if (escaped) {
      word += ch;
      escaped = false;
    } else if (ch === '\\') escaped = true;
    else if (/\s/.test(ch)) {
      if (word) words.push(word);
      word = '';
    } else word += ch;
  }
  if (word) words.push(word);
  const settings: [string, string | undefined][] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let setting: string | undefined;
    if (w === '-c') setting = words[++i];
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    else if (w.startsWith('-')) {
      // Other postgres command-line switches are refused by the server for clients, except these
      // documented ones; an unknown switch is not our concern, the server rejects it.
      continue;
    }
    if (setting === undefined) continue;
    const eq = setting.indexOf('=');
    const name = (eq < 0 ? setting : setting.slice(0, eq)).replaceAll('-', '_');
    settings.push([name, eq < 0 ? undefined : setting.slice(eq + 1)]);
  }
  return settings;
}

/**
 * `options` without its `gatehouse.*` settings, which speak to the proxy as the parameters do (the
 * server would refuse an unknown setting there). Words keep their escapes; the rest is unchanged.
 */
export function withoutProxySettings(options: string): string {
  if (!/gatehouse/i.test(options)) return options;
  const words = options.match(/(?:\\.|\S)+/gs) ?? [];
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const setting =
      w === '-c' ? words[i + 1] : w.startsWith('-c') || w.startsWith('--') ? w.slice(2) : undefined;
    if (setting !== undefined && /^gatehouse\./i.test(setting)) {
      if (w === '-c') i++;
      continue;
    }
    kept.push(w);
  }
  return kept.join(' ');
}
