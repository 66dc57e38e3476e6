// Writer-only measurement (no WAHA latency, no fetch-side limit): pages are fetched once from an
// in-process simulator into memory, then written batch after batch (2,000 messages, one writer, as the
// streaming strategy does) into a fresh schema, and compared with COPY of the same rows.
// Usage: npm run build && node scripts/writer-bench.mjs [messages] [chats] [repeat]
// DATABASE_URL (default: postgres://postgres@127.0.0.1:5432/test).
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import * as dbModule from '../dist/db/index.js';

const { createBatchWriter, measureCopyLimit, migrate, openDatabase } = dbModule;
import { startSimulator } from '../dist/sim/index.js';
import { createWahaClient } from '../dist/waha/client.js';

const messages = Number(process.argv[2] ?? 100_000);
const chats = Number(process.argv[3] ?? 1_000);
const repeat = Number(process.argv[4] ?? 1);
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const sim = await startSimulator({
  sessions: [{ name: 'default', datasetOptions: { chats, messages, days: 30, seed: 1 } }],
});
const waha = createWahaClient({ baseUrl: sim.url, requestTimeoutMs: 60_000 });
const nowS = Math.floor(Date.now() / 1000);
const window = { fromS: nowS - 30 * 86_400, toS: nowS };
const me = await waha.session('default');
const list = await waha.listChats('default', { pageSize: 500, engine: 'NOWEB' });
const all = [];
for (const chat of list) {
  for await (const page of waha.chatMessages('default', chat, {
    window,
    pageSize: 100,
    pageEnd: 'short',
    meId: me.me?.id ?? null,
  })) {
    all.push(...page.messages);
  }
}
await sim.close();
const batches = [];
for (let i = 0; i < all.length; i += 2000) batches.push({ chats: [], messages: all.slice(i, i + 2000) });
const db = await openDatabase({ databaseUrl: url });
const schema = `writer_bench_${process.pid}`;
for (let r = 0; r < repeat; r++) {
  await db.sql`drop schema if exists ${db.sql(schema)} cascade`;
  await migrate(db.sql, schema);
  const writer = createBatchWriter(db.sql, schema);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const totals = { inserted: 0, updated: 0, unchanged: 0, cleaned: 0 };
  for (const batch of batches) {
    const result = await writer.writeBatch(batch);
    for (const k of Object.keys(totals)) totals[k] += result[k];
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const again0 = performance.now();
  let unchanged = 0;
  for (const batch of batches) unchanged += (await writer.writeBatch(batch)).unchanged;
  const againMs = performance.now() - again0;
  // Absent from versions before the write limit: then only the writer is measured.
  const copy = measureCopyLimit
    ? await measureCopyLimit(db, schema, os.tmpdir())
    : { elapsedMs: null, rowsPerSecond: NaN };
  const rate = (all.length * 1000) / ms;
  console.log(
    JSON.stringify({
      messages: all.length,
      batches: batches.length,
      writerMs: Math.round(ms),
      writerRowsPerS: Math.round(rate),
      writerCpuMs: Math.round((cpu.user + cpu.system) / 1000),
      totals,
      rerunMs: Math.round(againMs),
      rerunUnchanged: unchanged,
      copyMs: copy.elapsedMs,
      copyRowsPerS: Math.round(copy.rowsPerSecond),
      vsCopy: +(rate / copy.rowsPerSecond).toFixed(2),
      load: os.loadavg()[0].toFixed(1),
    }),
  );
}
await db.sql`drop schema if exists ${db.sql(schema)} cascade`;
await db.close();
