import { quoteLiteral } from '../sql/quote.js';
import type { BackendChannel } from './backend.js';

/** The two settings, as current_setting() prints them, for idleTimeoutsOn. (idle_session_timeout: PostgreSQL 14 on.) */
export const IDLE_TIMEOUTS_SQL = `pg_catalog.current_setting('idle_in_transaction_session_timeout'),
      COALESCE(pg_catalog.current_setting('idle_session_timeout', true), '0')`;

export type IdleTimeouts = ReadonlyArray<readonly [name: string, shown: string]>;

/** The timeouts that are on, of the values IDLE_TIMEOUTS_SQL read. */
export function idleTimeoutsOn(inTransaction: string | null, session: string | null): IdleTimeouts {
  return (
    [
      ['idle_in_transaction_session_timeout', inTransaction ?? '0'],
      ['idle_session_timeout', session ?? '0'],
    ] as const
  ).filter(([, shown]) => shown !== '0');
}

/** Reads the timeouts that are on, for work that does not read them with the batch settings. */
export async function readIdleTimeouts(backend: BackendChannel): Promise<IdleTimeouts> {
  const { rows } = await backend.query(`SELECT ${IDLE_TIMEOUTS_SQL}`);
  return idleTimeoutsOn(rows[0][0], rows[0][1]);
}

const setAll = (values: ReadonlyArray<readonly [string, string]>, local: boolean) =>
  `SELECT ${values.map(([name, value]) => `pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, ${local})`).join(', ')}`;

/**
 * `idle_in_transaction_session_timeout` and `idle_session_timeout` end a
 * session that waits too long between statements. In batch mode PostgreSQL
 * waits between the gateway's own statements while the services score (tenths
 * of a second, longer under load), though the client's statement is still
 * running: a short timeout would end the session in the middle of it. Both
 * are turned off while the gateway works and put back before the client's
 * statement runs, so PostgreSQL arms them, as it would, when the statement
 * is done.
 *
 * Inside a transaction block they are changed LOCAL, under the gateway's
 * savepoint: its rollback puts them back if the work fails, and LOCAL leaves
 * whatever SET or SET LOCAL the block made as it was. Returns the SQL that
 * turns them off and the SQL that puts them back (run with the savepoint's
 * statements), undefined when none is on.
 */
export function idleTimeoutsInBlock(timeouts: IdleTimeouts): { off: string; back: string } | undefined {
  if (timeouts.length === 0) return undefined;
  return {
    off: setAll(
      timeouts.map(([name]) => [name, '0']),
      true,
    ),
    back: setAll(timeouts, true),
  };
}

/**
 * Outside a transaction block they are turned off for the session and put
 * back as they came: by RESET when the value was not the session's own SET
 * (postgresql.conf, ALTER ROLE, a startup option), so pg_settings shows the
 * same source after. Returns what puts them back, undefined when none is on.
 */
export async function pauseIdleTimeouts(
  backend: BackendChannel,
  timeouts: IdleTimeouts,
): Promise<(() => Promise<void>) | undefined> {
  if (timeouts.length === 0) return undefined;
  const names = timeouts.map(([name]) => quoteLiteral(name)).join(', ');
  // (The sources are read before set_config runs: pg_settings is made whole first.)
  const { rows } = await backend.query(
    `SELECT name, source, pg_catalog.set_config(name, '0', false) FROM pg_catalog.pg_settings WHERE name IN (${names})`,
  );
  const setBySession = new Set(rows.filter(([, source]) => source === 'session').map(([name]) => name as string));
  return async () => {
    const own = timeouts.filter(([name]) => setBySession.has(name));
    const reset = timeouts.filter(([name]) => !setBySession.has(name)).map(([name]) => `RESET ${name}`);
    await backend.query([...(own.length ? [setAll(own, false)] : []), ...reset].join('; '));
  };
}
