/**
 * Sends audit records, as written, to an HTTP endpoint in batches: a generic JSON-lines endpoint
 * (Vector, Fluent Bit, an OpenTelemetry collector's HTTP receiver...) or Splunk's HTTP Event Collector.
 * A copy for a SIEM: the audit file stays the record of truth. Delivery is at least once: a batch
 * whose answer was lost is sent again (metadata.uid / the record hash tell a duplicate). A batch that
 * fails waits and is sent again, in order, with growing pauses, for as long as it takes; only when more
 * than `maxBufferedRecords` wait are the oldest dropped, counted and logged.
 */
import type { Logger } from 'pino';
import { parseChainLine } from './chain.ts';
import { OcsfMapper } from './ocsf.ts';

export interface HttpSinkOptions {
  readonly url: string;
  /** `jsonl`: one JSON value a line; `splunk-hec`: Splunk HEC events (`{"time","source","sourcetype","event"}`). */
  readonly shape: 'jsonl' | 'splunk-hec';
  /** `records`: the audit records as written; `ocsf`: OCSF events (docs/compliance.md). */
  readonly format: 'records' | 'ocsf';
  /** Bearer token (jsonl) or HEC token (splunk-hec). Never logged. */
  readonly token?: string | undefined;
  readonly batchRecords: number;
  readonly batchIntervalMs: number;
  readonly maxBufferedRecords: number;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly productVersion: string;
  /** The audit file the records come from, for OCSF's unmapped.source. */
  readonly source?: string | undefined;
  /** First pause after a failed batch; it doubles up to `retryMaxMs`. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export class HttpAuditSink {
  readonly #options: HttpSinkOptions;
  /** One OCSF mapper per source (the collector forwards many logs through one sink). */
  readonly #mappers = new Map<string, OcsfMapper>();
  #queue: string[] = [];
  #sending: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;
  /** Past close()'s grace period: nothing more is sent. */
  #stopped = false;
  #sent = 0;
  #dropped = 0;
  /** Set while a failed batch waits to be sent again; cleared by close() to try once more at once. */
  #pause: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(options: HttpSinkOptions) {
    this.#options = options;
  }

  /** Records delivered so far (acknowledged with a 2xx). */
  get sent(): number {
    return this.#sent;
  }

  /** Records dropped because too many waited. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Records waiting to be sent. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Takes one written audit line; never blocks and never throws. `source` names its log for OCSF's
   * unmapped.source (default: the sink's `source` option).
   */
  push(line: string, source?: string): void {
    if (this.#closed) return;
    const item = this.#encode(line, source ?? this.#options.source ?? 'stdout');
    if (item === undefined) return;
    this.#queue.push(item);
    if (this.#queue.length > this.#options.maxBufferedRecords) {
      const over = this.#queue.length - this.#options.maxBufferedRecords;
      this.#queue.splice(0, over);
      if (this.#dropped === 0)
        this.#options.logger.error(
          { url: redact(this.#options.url), maxBufferedRecords: this.#options.maxBufferedRecords },
          'audit HTTP sink: the endpoint is behind by more than maxBufferedRecords: dropping the oldest (the audit file keeps them)',
        );
      this.#dropped += over;
    }
    if (this.#queue.length >= this.#options.batchRecords) this.#kick();
    else this.#timer ??= setTimeout(() => this.#kick(), this.#options.batchIntervalMs).unref();
  }

  /**
   * Resolves once everything pushed so far is delivered (the queue is empty), however long the endpoint
   * takes; or once the sink is stopped. The collector's forwarder moves its position only then.
   */
  async settled(): Promise<void> {
    while (this.#queue.length > 0 && !this.#stopped) {
      if (this.#sending === undefined) this.#kick();
      await (this.#sending ?? sleep(10));
    }
  }

  /** Sends what waits, trying for at most `graceMs` more, then stops. */
  async close(graceMs = 5000): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const deadline = Date.now() + graceMs;
    // A batch waiting out a pause goes at once; after that the usual pauses hold, so an endpoint
    // that is down is not hammered for the whole grace period.
    this.#wake();
    if (this.#queue.length > 0) this.#kick();
    while (this.#queue.length > 0 && Date.now() < deadline) {
      await Promise.race([this.#sending ?? sleep(10), sleep(Math.max(0, deadline - Date.now()))]);
      if (this.#sending === undefined && this.#queue.length > 0) this.#kick();
    }
    this.#stopped = true;
    this.#wake();
    await Promise.race([this.#sending, sleep(1000)]);
    if (this.#queue.length > 0)
      this.#options.logger.error(
        { url: redact(this.#options.url), unsent: this.#queue.length },
        'audit HTTP sink closed with records unsent (the audit file keeps them)',
      );
  }

  #kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sending ??= this.#drain().finally(() => {
      this.#sending = undefined;
      if (this.#queue.length > 0 && !this.#closed) this.#timer ??= setTimeout(() => this.#kick(), 0).unref();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && !this.#stopped) {
      const batch = this.#queue.slice(0, this.#options.batchRecords);
      const droppedBefore = this.#dropped;
      const problem = await this.#post(batch);
      if (problem === undefined) {
        // Records dropped for room while it was in flight came off the front: off this batch first.
        const gone = Math.min(batch.length, this.#dropped - droppedBefore);
        this.#queue.splice(0, batch.length - gone);
        this.#sent += batch.length;
        if (this.#failures > 0)
          this.#options.logger.warn({ url: redact(this.#options.url) }, 'audit HTTP sink delivering again');
        this.#failures = 0;
        continue;
      }
      this.#failures++;
      const pause = Math.min(
        this.#options.retryMaxMs ?? 30_000,
        (this.#options.retryMinMs ?? 200) * 2 ** Math.min(this.#failures - 1, 16),
      );
      if (this.#failures === 1 || this.#failures % 20 === 0)
        this.#options.logger.error(
          { url: redact(this.#options.url), problem, failures: this.#failures, pending: this.#queue.length },
          'audit HTTP sink: batch not delivered, trying again',
        );
      if (this.#stopped) return;
      await new Promise<void>((resolve) => {
        this.#pause = { timer: setTimeout(resolve, pause * (0.5 + Math.random() / 2)).unref(), resolve };
      });
      this.#pause = undefined;
    }
  }

  #wake(): void {
    if (!this.#pause) return;
    clearTimeout(this.#pause.timer);
    this.#pause.resolve();
  }

  /** undefined when delivered; else what went wrong, for the log. */
  async #post(batch: readonly string[]): Promise<string | undefined> {
    const { shape, token } = this.#options;
    const headers: Record<string, string> = {
      'content-type': shape === 'jsonl' ? 'application/x-ndjson' : 'application/json',
    };
    if (token !== undefined)
      headers['authorization'] = shape === 'jsonl' ? `Bearer ${token}` : `Splunk ${token}`;
    try {
      const response = await fetch(this.#options.url, {
        method: 'POST',
        headers,
        body: `${batch.join('\n')}\n`,
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      return response.ok ? undefined : `HTTP ${response.status}`;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return cause ?? (error instanceof Error ? error.name : String(error));
    }
  }

  #encode(line: string, source: string): string | undefined {
    const parsed = parseChainLine(line);
    if (!parsed.ok) return undefined;
    const value = this.#options.format === 'ocsf' ? JSON.stringify(this.#mapperOf(source).map(parsed)) : line;
    if (this.#options.shape === 'jsonl') return value;
    const time = Date.parse(String(parsed.record['time'])) / 1000;
    return `{"time":${Number.isFinite(time) ? time : 0},"source":"gatehouse","sourcetype":"${this.#options.format === 'ocsf' ? 'ocsf' : 'gatehouse:audit'}","event":${value}}`;
  }

  #mapperOf(source: string): OcsfMapper {
    let mapper = this.#mappers.get(source);
    if (mapper === undefined) {
      mapper = new OcsfMapper({ productVersion: this.#options.productVersion, source });
      this.#mappers.set(source, mapper);
    }
    return mapper;
  }
}

/** A URL without user info or query (a token may hide there), for the log. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
