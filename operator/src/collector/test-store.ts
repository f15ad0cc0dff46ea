import { inject } from 'vitest';
import { freshDatabase } from '../../../test/e2e/support/clients.ts';

/** A fresh, empty database on the test run's PostgreSQL, as a store URL. */
export async function freshStoreUrl(name: string): Promise<string> {
  const postgres = inject('postgres');
  const client = await freshDatabase(postgres, name);
  await client.end();
  const { user, password } = postgres.admin;
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${postgres.host}:${postgres.port}/${name}`;
}
