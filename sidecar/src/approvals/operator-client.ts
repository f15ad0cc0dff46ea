import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import {
  type ApprovalRequestView,
  type NewApprovalRequestValue,
  OPERATOR_APPROVALS_PREFIX,
  type RestoreAnswer,
  type RestoreApprovalsValue,
} from './operator-protocol.ts';

/** A call the operator refused or could not answer; `problem` is its JSON problem, when it sent one. */
export class OperatorCallError extends Error {
  override readonly name = 'OperatorCallError';
  readonly status: number;
  readonly problem: string | undefined;
  constructor(status: number, problem: string | undefined, message: string) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

export interface OperatorClientOptions {
  /** `https://host[:port]` of the operator's webhook Service. */
  readonly url: string;
  /** PEM of the CA that signs the operator's certificate; absent: the system's trusted CAs. */
  readonly caFile?: string;
  /** The pod's projected token, read at every call: the kubelet rotates it in place. */
  readonly tokenFile: string;
  /** Longer than the longest wait asked for. */
  readonly timeoutMs?: number;
}

/**
 * The sidecar's calls to the operator's approvals endpoint (operator-protocol.ts). The sidecar has
 * no API credentials: its projected token proves which pod's service account calls, and the
 * operator writes the ApprovalRequest objects.
 */
export class OperatorClient {
  readonly #options: OperatorClientOptions;

  constructor(options: OperatorClientOptions) {
    this.#options = options;
  }

  create(body: NewApprovalRequestValue, signal?: AbortSignal): Promise<ApprovalRequestView> {
    return this.#call('POST', '', body, signal);
  }

  /** The request once it is no longer Pending, or as it is after `waitSeconds`. */
  get(id: string, waitSeconds: number, signal?: AbortSignal): Promise<ApprovalRequestView> {
    return this.#call('GET', `/${encodeURIComponent(id)}?waitSeconds=${waitSeconds}`, undefined, signal);
  }

  withdraw(id: string, signal?: AbortSignal): Promise<ApprovalRequestView> {
    return this.#call('POST', `/${encodeURIComponent(id)}/withdraw`, undefined, signal);
  }

  executed(id: string, signal?: AbortSignal): Promise<ApprovalRequestView> {
    return this.#call('POST', `/${encodeURIComponent(id)}/executed`, undefined, signal);
  }

  /** What of the service account's earlier requests on the database stands, at this sidecar's start. */
  restore(body: RestoreApprovalsValue, signal?: AbortSignal): Promise<RestoreAnswer> {
    return this.#call('POST', '/restore', body, signal);
  }

  async #call<T>(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const [token, ca] = await Promise.all([
      readFile(this.#options.tokenFile, 'utf8'),
      this.#options.caFile === undefined ? undefined : readFile(this.#options.caFile),
    ]);
    const url = new URL(this.#options.url.replace(/\/$/, '') + OPERATOR_APPROVALS_PREFIX + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const timeoutMs = this.#options.timeoutMs ?? 40_000;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ...(ca !== undefined && { ca }),
          minVersion: 'TLSv1.2',
          timeout: timeoutMs,
          ...(signal && { signal }),
          headers: {
            authorization: `Bearer ${token.trim()}`,
            accept: 'application/json',
            ...(payload && { 'content-type': 'application/json', 'content-length': String(payload.length) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`the operator did not answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new OperatorCallError(status, undefined, `the operator answered ${status} without JSON`);
    }
    if (status < 200 || status >= 300) {
      const problem = parsed as { problem?: string; message?: string };
      throw new OperatorCallError(
        status,
        problem.problem,
        `the operator refused: ${status} ${problem.message ?? ''}`,
      );
    }
    return parsed as T;
  }
}
