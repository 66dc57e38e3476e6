#!/usr/bin/env node
// Peak memory of each strategy as the history grows: runs the built CLI against the simulator (in its own
// process, so only the importer is measured) for each size given, and prints the importer's peak RSS,
// with the simulator's start-up time and the CPU it spent serving the import.
// Usage: node scripts/memory.mjs [--strategy streaming,parallel,chunked,sequential] [--per-chat n | --chats n]
//                                [--engine NOWEB|GOWS|WEBJS] [--node-args "<flags for the importer's node>"]
//                                [messages...]
//        (default: streaming, parallel and chunked at 100000 and 1000000 messages, 100 per chat;
//        --per-chat 10 puts the same messages in ten times the chats; --chats n holds the chats at n for
//        every size, so only the history grows; --engine WEBJS serves chat items as
//        whatsapp-web.js builds them: the newest message whole, a group's metadata with every member)
// Uses DATABASE_URL when set, else the embedded PostgreSQL in a temporary directory. Linux only (/proc).
import { spawn } from 'node:child_process';
import { setInterval, clearInterval } from 'node:timers';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/waha-import.js');
const args = process.argv.slice(2);
const strategyAt = args.indexOf('--strategy');
const strategies =
  strategyAt >= 0 ? args.splice(strategyAt, 2)[1].split(',') : ['streaming', 'parallel', 'chunked'];
const option = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args.splice(at, 2)[1] : undefined;
};
const perChat = Number(option('--per-chat') ?? 100);
const chatsOption = option('--chats');
const fixedChats = chatsOption === undefined ? undefined : Number(chatsOption);
if (fixedChats !== undefined && !(fixedChats >= 1))
  throw new Error('--chats takes a number of chats, 1 or more');
const nodeArgs = (option('--node-args') ?? '').split(' ').filter(Boolean);
const engine = option('--engine') ?? 'NOWEB';
if (!(perChat >= 1)) throw new Error('--per-chat takes a number of messages, 1 or more');
const sizes = args.map(Number).filter((n) => n > 0);
// The bench's settings for each strategy: V1 (parallel at 20), D (chunked, 50 chats at 50 at once).
const FLAGS = {
  streaming: ['--concurrency', '32'],
  parallel: ['--concurrency', '20'],
  chunked: ['--concurrency', '50', '--chunk', '50'],
  sequential: [],
};
for (const s of strategies) if (!FLAGS[s]) throw new Error(`unknown strategy ${s}`);
const schemaPrefix = `memory_${process.pid}`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-memory-'));
fs.chmodSync(scratch, 0o755); // as root, the embedded server runs as the postgres user

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function startSim(messages) {
  const chats = fixedChats ?? Math.max(100, Math.round(messages / perChat));
  const startedMs = Date.now();
  const child = spawn(
    process.execPath,
    [bin, 'sim', '--port', '0', '--engine', engine, '--chats', String(chats), '--messages', String(messages)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/[\d.:]+)/.exec(out);
      if (match) {
        resolve({
          url: match[1],
          chats,
          setupMs: Date.now() - startedMs,
          cpu: () => cpuSeconds(child.pid),
          stop: () => child.kill('SIGINT'),
        });
      }
    });
    child.on('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
}

function importOnce(url, messages, strategy) {
  const args = [
    ...nodeArgs,
    bin,
    'run',
    '--waha-url',
    url,
    '--strategy',
    strategy,
    ...FLAGS[strategy],
    '--json',
    '--fresh',
    '--schema',
    `${schemaPrefix}_${strategy}_${messages}`,
    '--checkpoint',
    path.join(scratch, `checkpoint-${strategy}-${messages}.json`),
  ];
  const env = {
    ...process.env,
    WAHA_IMPORT_DATA_DIR: process.env.DATABASE_URL ? undefined : path.join(scratch, 'postgres'),
  };
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  // The importer's CPU time, read until it exits (/proc forgets it then): late by 100 ms at most.
  let cpu = 0;
  const polling = setInterval(() => {
    try {
      cpu = cpuSeconds(child.pid);
    } catch {
      // gone already
    }
  }, 100);
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      clearInterval(polling);
      const last = out.trim().split('\n').at(-1);
      if (code !== 0 || !last) reject(new Error(`import exited with ${code}`));
      else resolve({ ...JSON.parse(last).summary, cpuSeconds: cpu });
    }),
  );
}

try {
  console.log(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${os.cpus().length} cores` +
      `; ${engine} simulator` +
      (nodeArgs.length ? `; importer node ${nodeArgs.join(' ')}` : ''),
  );
  for (const messages of sizes.length ? sizes : [100_000, 1_000_000]) {
    const sim = await startSim(messages);
    console.log(
      `${messages.toLocaleString('en-US')} messages in ${sim.chats.toLocaleString('en-US')} chats: ` +
        `simulator ready in ${(sim.setupMs / 1000).toFixed(1)} s`,
    );
    try {
      for (const strategy of strategies) {
        const cpuBefore = sim.cpu();
        const summary = await importOnce(sim.url, messages, strategy);
        console.log(
          `  ${strategy}: peak RSS ${summary.peakRssMb} MB, ${summary.dbTransactions} transactions, ` +
            `${summary.wahaRequests} requests, ${(summary.elapsedMs / 1000).toFixed(1)} s, ` +
            `${Math.round(summary.messagesPerSecond)} msgs/s, CPU ${summary.cpuSeconds.toFixed(1)} s; simulator CPU ${(sim.cpu() - cpuBefore).toFixed(1)} s; ` +
            `load ${os.loadavg()[0].toFixed(1)}`,
        );
      }
    } finally {
      sim.stop();
    }
  }
} finally {
  if (process.env.DATABASE_URL) {
    // The scratch schemas of an external database; the embedded one goes with the scratch directory.
    const { default: postgres } = await import('postgres');
    const sql = postgres(process.env.DATABASE_URL, { onnotice: () => undefined });
    const schemas = await sql`select nspname from pg_namespace where nspname like ${schemaPrefix + '\\_%'}`;
    for (const { nspname } of schemas) await sql`drop schema ${sql(nspname)} cascade`;
    await sql.end();
  }
  fs.rmSync(scratch, { recursive: true, force: true });
}
