import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditHeldWrite } from './audit-held-write.ts';

/** A real socket pair: what the held writer sends on `out` arrives, in order, in `received`. */
let server: Server;
let out: Socket;
let received: string;
let released: number;

beforeEach(async () => {
  received = '';
  released = 0;
  server = createServer((peer) => peer.on('data', (chunk) => (received += chunk.toString())));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  out = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(out, 'connect');
});

afterEach(async () => {
  out.destroy();
  server.close();
});

function writer(): AuditHeldWrite {
  return new AuditHeldWrite(
    () => out,
    () => released++,
  );
}

/** A record the test decides the fate of. */
function record(): { written: Promise<boolean>; settle: (ok: boolean) => void } {
  let settle!: (ok: boolean) => void;
  const written = new Promise<boolean>((resolve) => (settle = resolve));
  return { written, settle };
}

async function arrived(text: string): Promise<void> {
  for (let i = 0; i < 200 && received !== text; i++) await new Promise((r) => setTimeout(r, 5));
  expect(received).toBe(text);
}

describe('AuditHeldWrite', () => {
  it('keeps what leads up to a held statement with it, and writes them together once its record is written', async () => {
    const w = writer();
    const r = record();
    w.add(Buffer.from('parse;'));
    w.add(w.hold(Buffer.from('execute;'), r.written, () => Buffer.from('stand-in;')));
    w.add(Buffer.from('sync;'));
    w.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received).toBe('');
    expect(w.heldBytes).toBe('parse;execute;sync;'.length);
    r.settle(true);
    await arrived('parse;execute;sync;');
    expect(released).toBe(1);
    expect(w.heldBytes).toBe(0);
  });

  it('writes what precedes a settled statement while a later one still waits', async () => {
    const w = writer();
    const first = record();
    const second = record();
    w.add(Buffer.from('parse1;'));
    w.add(w.hold(Buffer.from('execute1;'), first.written, () => undefined));
    w.add(Buffer.from('parse2;'));
    w.add(w.hold(Buffer.from('execute2;'), second.written, () => undefined));
    w.flush();
    first.settle(true);
    await arrived('parse1;execute1;');
    second.settle(true);
    await arrived('parse1;execute1;parse2;execute2;');
  });

  it('sends the stand-in in place of a statement whose record was lost, and what follows it', async () => {
    const w = writer();
    const first = record();
    const second = record();
    w.add(w.hold(Buffer.from('q1;'), first.written, () => Buffer.from('refused1;')));
    w.add(w.hold(Buffer.from('q2;'), second.written, () => undefined));
    w.add(Buffer.from('tail;'));
    w.flush();
    // The second record settles first: it still waits behind the first.
    second.settle(false);
    await new Promise((r) => setTimeout(r, 20));
    expect(received).toBe('');
    first.settle(false);
    await arrived('refused1;tail;');
  });

  it('passes a statement at once when there is nothing to wait for, and refuses at once what is known lost', async () => {
    const w = writer();
    const frame = Buffer.from('q;');
    expect(w.hold(frame, true, () => Buffer.from('no;'))).toBe(frame);
    w.add(frame);
    w.add(w.hold(Buffer.from('q2;'), false, () => Buffer.from('refused;')));
    w.flush();
    await arrived('q;refused;');
  });

  it('keeps chunks in order across several flushes while a record is pending', async () => {
    const w = writer();
    const r = record();
    w.add(w.hold(Buffer.from('a;'), r.written, () => undefined));
    w.flush();
    w.add(Buffer.from('b;'));
    w.flush();
    const r2 = record();
    w.add(w.hold(Buffer.from('c;'), r2.written, () => undefined));
    w.flush();
    r2.settle(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received).toBe('');
    r.settle(true);
    await arrived('a;b;c;');
  });

  it('drops everything on reset (the session ended)', async () => {
    const w = writer();
    const r = record();
    w.add(w.hold(Buffer.from('a;'), r.written, () => undefined));
    w.flush();
    w.reset();
    r.settle(true);
    w.add(Buffer.from('after;'));
    w.flush();
    await arrived('after;');
  });
});
