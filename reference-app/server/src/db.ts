// The database connection: one pg pool shared by Drizzle and the hand-written queries.
import { drizzle } from 'drizzle-orm/node-postgres';
import { Pool } from 'pg';
import * as schema from './schema';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is not set: export the PostgreSQL connection string, e.g. postgresql://user:password@127.0.0.1:5432/chat');
  process.exit(2);
}

export const pool = new Pool({ connectionString: url, max: 10 });
export const db = drizzle(pool, { schema });
export { schema };

/** Rows of a parameterised SQL query. */
export async function rows<T = any>(text: string, params: unknown[] = []): Promise<T[]> {
  const result = await pool.query(text, params);
  return result.rows as T[];
}

/** The first row of a query, or undefined. */
export async function one<T = any>(text: string, params: unknown[] = []): Promise<T | undefined> {
  return (await rows<T>(text, params))[0];
}
