import { UserError } from '../../../sidecar/src/errors.ts';
import { type CollectorCa, type CollectorTarget, collectorRequest, reasonOf } from './collector-http.ts';
import type { SourceView } from './store.ts';
import type { RecordView } from './store-queries.ts';

/**
 * The collector's read API as the CLI uses it (evidence build --server, audit export --server), with a
 * reader's credentials: errors a person can act on (cannot reach, the collector's own reason), never a
 * stack trace.
 */
export class CollectorClient {
  readonly #base: string;
  readonly #target: CollectorTarget;
  readonly #authorization: string;

  /** `ca`: the CA that verifies an https collector instead of the system's (--ca), for this client only. */
  constructor(server: string, authorization: string, ca?: CollectorCa) {
    this.#target = { server, ca };
    this.#base = server.replace(/\/$/, '');
    this.#authorization = authorization;
  }

  async get<T>(path: string): Promise<T> {
    const { status, body } = await collectorRequest(this.#target, `${this.#base}${path}`, {
      authorization: this.#authorization,
    });
    if (status < 200 || status >= 300 || body === undefined)
      throw new UserError(`the collector answered ${status} to ${path.split('?')[0]}: ${reasonOf(body)}`);
    return body as T;
  }

  async sources(): Promise<SourceView[]> {
    return (await this.get<{ items: SourceView[] }>('/v1/sources')).items;
  }

  /** Every record GET /v1/records answers for `query`, page by page (newest first, as the API pages). */
  async *records(query: URLSearchParams): AsyncGenerator<RecordView> {
    let cursor: string | undefined;
    do {
      if (cursor !== undefined) query.set('cursor', cursor);
      const page = await this.get<{ items: RecordView[]; next?: string }>(`/v1/records?${query}`);
      yield* page.items;
      cursor = page.next;
    } while (cursor !== undefined);
  }
}

/** One log: a pod's log begun with another key is another source. */
export function sourceName(source: RecordView['source']): string {
  return `${source.cluster}/${source.namespace}/${source.pod}/${source.database}@${source.logKeyId}`;
}

/** The Authorization header of a reader's credentials, as `audit query`, `audit export` and `evidence build` take them. */
export function readerAuthorization(values: { token?: string; user?: string; password?: string }): string {
  if (values.token !== undefined) return `Bearer ${values.token}`;
  if (values.user !== undefined) {
    const password = values.password ?? process.env['GATEHOUSE_PASSWORD'];
    if (password === undefined) throw new UserError('--user needs --password P or $GATEHOUSE_PASSWORD');
    return `Basic ${Buffer.from(`${values.user}:${password}`).toString('base64')}`;
  }
  throw new UserError('say who you are: --token JWT, or --user NAME with --password P');
}
