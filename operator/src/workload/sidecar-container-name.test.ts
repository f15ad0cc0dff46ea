import { describe, expect, test } from 'vitest';
import { sidecarContainerName } from './sidecar-container-name.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe('sidecarContainerName', () => {
  test('a short name is kept as it is', () => {
    expect(sidecarContainerName('orders-db')).toBe('gatehouse-orders-db');
  });

  test.each([
    'a'.repeat(253),
    'orders.db',
    `${'x'.repeat(52)}-y`,
    'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h.i.j.k',
  ])('%s becomes a DNS label of at most 63 characters', (name) => {
    const container = sidecarContainerName(name);
    expect(container.length).toBeLessThanOrEqual(63);
    expect(container).toMatch(DNS_LABEL);
    expect(sidecarContainerName(name)).toBe(container);
  });

  test('names that differ only where they are cut or by a dot get different containers', () => {
    const long = 'a'.repeat(60);
    expect(sidecarContainerName(`${long}-one`)).not.toBe(sidecarContainerName(`${long}-two`));
    expect(sidecarContainerName('orders.db')).not.toBe(sidecarContainerName('orders-db'));
  });
});
