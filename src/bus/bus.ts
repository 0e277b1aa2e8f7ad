import { connect, createInbox, Events, type NatsConnection, type Subscription } from 'nats';
import { DftfsError } from '../errors.js';
import { createLogger } from '../log.js';

const log = createLogger('bus');

/** Every request has a deadline: a control-plane answer that takes longer is treated as none. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** Time given to deliver pending messages on close before the connection is dropped. */
export const CLOSE_DRAIN_MS = 2_000;

export interface BusOptions {
  url: string;
  cluster: string;
  name: string;
}

export type Handler = (body: Record<string, unknown>, reply: (body: unknown) => void, subject: string) => void | Promise<void>;

const enc = (body: unknown) => Buffer.from(JSON.stringify(body));
function dec(data: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The control plane: JSON messages on NATS subjects under `dftfs.<cluster>.`. Bulk bytes never
 * travel here. Connections reconnect forever (a restarted nats-server is picked up again) and
 * subscriptions survive that.
 */
export class Bus {
  private closing: Promise<void> | undefined;
  private connected = true;

  private constructor(private readonly nc: NatsConnection, readonly cluster: string) {}

  static async connect(opts: BusOptions): Promise<Bus> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: opts.url,
        name: opts.name,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        waitOnFirstConnect: false,
        timeout: REQUEST_TIMEOUT_MS,
      });
    } catch (err) {
      throw new DftfsError('ERR_DFTFS_NATS', `cannot connect to NATS at ${opts.url}: ${(err as Error).message}`, {
        hint: 'check --nats (or DFTFS_NATS); without a URL dftfs starts its own nats-server on loopback',
        cause: err,
      });
    }
    const bus = new Bus(nc, opts.cluster);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) bus.connected = false;
        if (s.type === Events.Reconnect) bus.connected = true;
        if (s.type === Events.Disconnect || s.type === Events.Reconnect) log.debug('nats', s.type, String(s.data));
      }
    })();
    return bus;
  }

  /** `dftfs.<cluster>.<parts…>` */
  subject(...parts: string[]): string {
    return ['dftfs', this.cluster, ...parts].join('.');
  }

  publish(subject: string, body: unknown): void {
    this.nc.publish(subject, enc(body));
  }

  /** Subscribes; malformed messages are dropped (logged), never passed on. */
  subscribe(subject: string, handler: Handler, opts: { queue?: string } = {}): Subscription {
    const sub = this.nc.subscribe(subject, opts.queue ? { queue: opts.queue } : {});
    void (async () => {
      for await (const m of sub) {
        const body = dec(m.data);
        if (!body) {
          log.debug('dropped malformed message on', m.subject);
          continue;
        }
        const reply = (b: unknown) => {
          if (m.reply) this.nc.publish(m.reply, enc(b));
        };
        try {
          await handler(body, reply, m.subject);
        } catch (err) {
          log.debug('handler failed on', m.subject, (err as Error).message);
          reply({ error: { code: (err as DftfsError).code ?? 'ERR_DFTFS_IO', message: (err as Error).message } });
        }
      }
    })();
    return sub;
  }

  /** One answer, or ERR_DFTFS_TIMEOUT. An answer carrying `error` becomes a DftfsError. */
  async request(subject: string, body: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Record<string, unknown>> {
    let m;
    try {
      m = await this.nc.request(subject, enc(body), { timeout: timeoutMs });
    } catch (err) {
      // NATS answers 503 at once when nobody subscribes to the subject.
      const why = (err as { code?: string }).code === '503' ? 'nobody answers' : `no answer within ${timeoutMs} ms`;
      throw new DftfsError('ERR_DFTFS_TIMEOUT', `${why} on ${subject}`, { cause: err });
    }
    const out = dec(m.data);
    if (!out) throw new DftfsError('ERR_DFTFS_PROTOCOL', `malformed answer on ${subject}`);
    const e = out.error as { code?: string; message?: string } | undefined;
    if (e) throw new DftfsError((e.code as never) ?? 'ERR_DFTFS_IO', e.message ?? 'remote error');
    return out;
  }

  /**
   * Every answer within `maxWaitMs`; returns early once `until` holds of the answers so far,
   * `quietMs` after the last one, or `afterFirstMs` after the first one (when one answer is
   * enough to start).
   */
  async gather(subject: string, body: unknown, opts: { maxWaitMs: number; quietMs?: number; afterFirstMs?: number; until?: (answers: Array<Record<string, unknown>>) => boolean }): Promise<Array<Record<string, unknown>>> {
    const inbox = createInbox();
    const sub = this.nc.subscribe(inbox);
    const out: Array<Record<string, unknown>> = [];
    const done = new Promise<void>((resolve) => {
      let quiet: NodeJS.Timeout | undefined;
      const all = setTimeout(() => { sub.unsubscribe(); }, opts.maxWaitMs);
      void (async () => {
        for await (const m of sub) {
          const b = dec(m.data);
          if (b) out.push(b);
          if (opts.until?.(out)) break;
          if (out.length === 1 && opts.afterFirstMs !== undefined) setTimeout(() => sub.unsubscribe(), opts.afterFirstMs);
          if (opts.quietMs !== undefined) {
            clearTimeout(quiet);
            quiet = setTimeout(() => sub.unsubscribe(), opts.quietMs);
          }
        }
        clearTimeout(all);
        clearTimeout(quiet);
        sub.unsubscribe();
        resolve();
      })();
    });
    this.nc.publish(subject, enc(body), { reply: inbox });
    await done;
    return out;
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  /**
   * Drains subscriptions and closes; idempotent. A drain cannot finish while the server is
   * unreachable (the client would wait through reconnects), so it gets CLOSE_DRAIN_MS.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.connected || this.nc.isClosed()) {
        await this.nc.close().catch(() => undefined);
        return;
      }
      const drained = this.nc.drain().catch(() => undefined);
      const timedOut = new Promise<void>((r) => setTimeout(r, CLOSE_DRAIN_MS).unref());
      await Promise.race([drained, timedOut]);
      // A drain that timed out or failed (nats-server went away meanwhile) leaves the connection
      // open, and nats.js would try to reconnect to it forever, keeping the process alive.
      if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    })();
    return this.closing;
  }
}
