import { randomUUID } from 'node:crypto';
import type { TransactionSql } from 'postgres';
import { DatabaseError } from '../errors.js';
import type { Sql } from './connect.js';
import { validateSchemaName } from './schema.js';

interface Migration {
  version: number;
  name: string;
  up(tx: TransactionSql, schema: string): Promise<void>;
}

/**
 * The schema's history, oldest first. A released migration is never edited: a change is a new version.
 * Every statement names the schema through `tx(schema)`, a validated identifier.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'chats, messages, import_runs',
    async up(tx, schema) {
      await tx`
        create table ${tx(schema)}.chats (
          session text not null,
          id text not null,
          name text,
          kind text not null,
          last_activity_at timestamptz,
          raw jsonb,
          first_seen_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          primary key (session, id)
        )`;
      await tx`
        create table ${tx(schema)}.messages (
          session text not null,
          id text not null,
          chat_id text not null,
          wa_id text not null,
          from_me boolean not null,
          sender text,
          recipient text,
          participant text,
          body text,
          type text not null,
          has_media boolean not null,
          ack smallint,
          timestamp_s bigint not null,
          sent_at timestamptz generated always as (to_timestamp(timestamp_s)) stored,
          reply_to_id text,
          raw jsonb,
          text_cleaned boolean not null default false,
          imported_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          primary key (session, id)
        )`;
      await tx`create index messages_chat_time_idx on ${tx(schema)}.messages (session, chat_id, timestamp_s)`;
      await tx`create index messages_wa_id_idx on ${tx(schema)}.messages (session, wa_id)`;
      await tx`
        create table ${tx(schema)}.import_runs (
          id bigserial primary key,
          session text not null,
          strategy text not null,
          window_from timestamptz,
          window_to timestamptz,
          started_at timestamptz not null default now(),
          finished_at timestamptz,
          status text not null default 'running'
            check (status in ('running', 'succeeded', 'failed', 'interrupted')),
          chats int,
          messages_fetched int,
          inserted int,
          updated int,
          unchanged int,
          waha_requests int,
          retries int,
          db_transactions int,
          elapsed_ms int,
          options jsonb,
          error text
        )`;
    },
  },
  {
    version: 2,
    name: 'chat_sync: the span of time each chat is known to be complete for',
    async up(tx, schema) {
      // One row per chat: every message with a timestamp in [synced_from_s, synced_to_s] was committed by
      // a run that finished the chat. Written in the transaction that commits the chat's last page, so
      // it never claims more than the messages table holds. Incremental runs start from synced_to_s.
      await tx`
        create table ${tx(schema)}.chat_sync (
          session text not null,
          chat_id text not null,
          synced_from_s bigint not null,
          synced_to_s bigint not null,
          updated_at timestamptz not null default now(),
          primary key (session, chat_id),
          check (synced_from_s <= synced_to_s)
        )`;
    },
  },
  {
    version: 3,
    name: 'failed_chats, the partial run status, messages without a timestamp',
    async up(tx, schema) {
      // A chat the last runs could not import (WAHA kept failing on it, could not route its id, or
      // PostgreSQL refused one of its messages). Removed in the transaction that finally completes it.
      await tx`
        create table ${tx(schema)}.failed_chats (
          session text not null,
          chat_id text not null,
          run_id bigint,
          reason text not null,
          error text not null,
          attempts int not null default 1,
          first_failed_at timestamptz not null default now(),
          last_failed_at timestamptz not null default now(),
          primary key (session, chat_id)
        )`;
      await tx`alter table ${tx(schema)}.import_runs drop constraint if exists import_runs_status_check`;
      await tx`
        alter table ${tx(schema)}.import_runs add constraint import_runs_status_check
          check (status in ('running', 'succeeded', 'partial', 'failed', 'interrupted'))`;
      await tx`alter table ${tx(schema)}.import_runs add column chats_failed int`;
      // No engine field at all held the time (see src/waha/parse.ts): stored, counted, never dropped.
      await tx`alter table ${tx(schema)}.messages alter column timestamp_s drop not null`;
    },
  },
  {
    version: 4,
    name: 'instance token and checkpoint_progress: what lets a run check a checkpoint against the database',
    async up(tx, schema) {
      // One row, a random token made when the schema's tables are created. A schema dropped and created
      // again, or another database, has another token: a checkpoint naming the old one is not believed.
      await tx`
        create table ${tx(schema)}.instance (
          token text primary key,
          created_at timestamptz not null default now()
        )`;
      await tx`insert into ${tx(schema)}.instance (token) values (${randomUUID()})`;
      // Per checkpoint (its random id), the transactions and messages committed under it, counted in the
      // transaction of every batch. A checkpoint claiming more than this (a backup restored to a moment
      // before some of its commits) is not believed.
      await tx`
        create table ${tx(schema)}.checkpoint_progress (
          checkpoint_id text primary key,
          session text not null,
          transactions bigint not null default 0,
          messages bigint not null default 0,
          started_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        )`;
    },
  },
  {
    version: 5,
    name: 'messages_lid_idx: the stored @lid rows, for the @lid/@c.us clean-up',
    async up(tx, schema) {
      // The writer removes a stored `@lid` copy of each incoming `@c.us` message (src/db/writer.ts). Most
      // tables hold few or no `@lid` rows: this index lets it look only at those, and skip the look-up
      // altogether when there are none.
      await tx`
        create index messages_lid_idx on ${tx(schema)}.messages (session, wa_id) where id like '%@lid%'`;
    },
  },
  {
    version: 6,
    name: 'queue_plans, queue_units, queue_workers, queue_firings: the books of `enqueue` and `worker`',
    async up(tx, schema) {
      // The job queue itself is pg-boss's (its own schema, <schema>_queue); these tables are what the
      // importer keeps of it: which plan a job belongs to, what each unit did, and which workers live.
      // One plan per session of one WAHA server and one enqueue (or scheduled firing).
      await tx`
        create table ${tx(schema)}.queue_plans (
          id bigserial primary key,
          plan_key text not null,
          trigger text not null,
          waha_url text not null,
          session text not null,
          window_from_s bigint not null,
          window_to_s bigint not null,
          options jsonb not null,
          units int not null,
          chats int not null,
          created_at timestamptz not null default now()
        )`;
      await tx`create index on ${tx(schema)}.queue_plans (plan_key)`;
      // One job of pg-boss per unit: a group of chats of the plan, fetched and written by one worker.
      await tx`
        create table ${tx(schema)}.queue_units (
          plan_id bigint not null references ${tx(schema)}.queue_plans (id) on delete cascade,
          unit int not null,
          job_id uuid not null unique,
          chats int not null,
          state text not null default 'waiting'
            check (state in ('waiting', 'running', 'done', 'partial', 'failed')),
          worker text,
          attempts int not null default 0,
          started_at timestamptz,
          finished_at timestamptz,
          messages_fetched bigint not null default 0,
          inserted bigint not null default 0,
          updated bigint not null default 0,
          unchanged bigint not null default 0,
          chats_failed int not null default 0,
          waha_requests bigint not null default 0,
          error text,
          primary key (plan_id, unit)
        )`;
      // Each worker process, its heartbeat, and the WAHA servers it is talking to.
      await tx`
        create table ${tx(schema)}.queue_workers (
          id text primary key,
          host text not null,
          pid int not null,
          state text not null check (state in ('running', 'stopping', 'stopped')),
          started_at timestamptz not null default now(),
          last_seen_at timestamptz not null default now(),
          waha_urls text[] not null default '{}',
          jobs_done int not null default 0
        )`;
      // Each firing of a schedule a worker handled, once per pg-boss job (a retried firing is not counted twice).
      await tx`
        create table ${tx(schema)}.queue_firings (
          job_id uuid primary key,
          schedule text not null,
          worker text not null,
          fired_at timestamptz not null default now(),
          plans_added int not null default 0,
          plans_pending int not null default 0,
          error text
        )`;
    },
  },
  {
    version: 7,
    name: 'checkpoint_progress by slot: batches of one checkpoint count themselves without waiting for each other',
    async up(tx, schema) {
      // One row per checkpoint made every batch of a run update that row, and hold its lock to its commit:
      // batches written at once (parallel's chats) committed one after another. Now each connection
      // counts into a slot of its own, its backend's pid (unique among the live ones: a few rows per run);
      // a checkpoint's progress is the sum of its slots. The rows there are slot 0.
      await tx`alter table ${tx(schema)}.checkpoint_progress add column slot integer not null default 0`;
      await tx`alter table ${tx(schema)}.checkpoint_progress drop constraint checkpoint_progress_pkey`;
      await tx`alter table ${tx(schema)}.checkpoint_progress add primary key (checkpoint_id, slot)`;
    },
  },
  {
    version: 8,
    name: 'chat_sync: no span claimed past the moment it was written',
    async up(tx, schema) {
      // Until 2026-12-03 a run given an --until still to come recorded its chats as complete up to it,
      // and incremental runs skipped them until that time. Nothing can have been read after the row was
      // last written (updated_at): a span is cut there, and one that starts later claims nothing.
      await tx`
        delete from ${tx(schema)}.chat_sync
        where synced_from_s > floor(extract(epoch from updated_at))`;
      await tx`
        update ${tx(schema)}.chat_sync set synced_to_s = floor(extract(epoch from updated_at))::bigint
        where synced_to_s > floor(extract(epoch from updated_at))`;
    },
  },
  {
    version: 9,
    name: 'chat_sync_forms: the span each id a chat is listed under was read for',
    async up(tx, schema) {
      // A person WAHA lists under two ids (@lid and a number, on a WAHA that does not merge their
      // histories) is one stored chat, and one chat_sync row, but two histories: the row says nothing of
      // an id that was never read. One row per stored chat and listed id, written with chat_sync. Empty at
      // first: a chat listed under two ids is read whole once more by the next incremental run.
      await tx`
        create table ${tx(schema)}.chat_sync_forms (
          session text not null,
          chat_id text not null,
          listed_id text not null,
          synced_from_s bigint not null,
          synced_to_s bigint not null,
          updated_at timestamptz not null default now(),
          primary key (session, chat_id, listed_id),
          check (synced_from_s <= synced_to_s)
        )`;
    },
  },
  {
    version: 10,
    name: 'failed_chats: the window the chat failed in',
    async up(tx, schema) {
      // A chat that failed in a long window (a back-fill of 90 days) and later completed in a shorter one
      // (a nightly run of 30) lost its row, and the days between were never read again: the row keeps
      // the window (the union, over repeated failures), every run reads the chat over it too, and only a
      // completion covering it clears the row. Rows of before take their run's window where known.
      await tx`
        alter table ${tx(schema)}.failed_chats
          add column window_from_s bigint,
          add column window_to_s bigint`;
      await tx`
        update ${tx(schema)}.failed_chats f set
          window_from_s = floor(extract(epoch from r.window_from))::bigint,
          window_to_s = floor(extract(epoch from r.window_to))::bigint
        from ${tx(schema)}.import_runs r
        where r.id = f.run_id and r.window_from is not null and r.window_to is not null`;
    },
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings `schema` (created when missing) up to the latest version, all in one transaction: either every
 * pending migration is applied or none is. A transaction-scoped advisory lock per schema makes a second
 * process wait and then find nothing left to do. Returns the versions applied now (empty when up to date).
 */
export async function migrate(sql: Sql, schema: string): Promise<{ applied: number[] }> {
  validateSchemaName(schema);
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${`waha-import:migrate:${schema}`}))`;
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists.
    const [existing] = await tx`select 1 from pg_namespace where nspname = ${schema}`;
    if (!existing) await tx`create schema ${tx(schema)}`;
    await tx`
      create table if not exists ${tx(schema)}.schema_migrations (
        version int primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`;
    const rows = await tx<{ version: number }[]>`select version from ${tx(schema)}.schema_migrations`;
    const done = new Set(rows.map((row) => row.version));
    const newest = Math.max(0, ...done);
    if (newest > LATEST_SCHEMA_VERSION) {
      throw new DatabaseError(
        `Schema "${schema}" is at version ${newest}, newer than this waha-import knows (${LATEST_SCHEMA_VERSION}).`,
        'Upgrade waha-import, or use another --schema.',
      );
    }
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await migration.up(tx, schema);
      await tx`
        insert into ${tx(schema)}.schema_migrations (version, name)
        values (${migration.version}, ${migration.name})`;
      applied.push(migration.version);
    }
    return { applied };
  });
}
