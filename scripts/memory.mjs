#!/usr/bin/env node
// Peak memory of the streaming strategy as the history grows: runs the built CLI against the simulator
// (in its own process, so only the importer is measured) for each size given, and prints the importer's
// peak RSS. Usage: node scripts/streaming-memory.mjs [messages...]   (default: 100000 1000000)
// Uses DATABASE_URL when set, else the embedded PostgreSQL in a temporary directory.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/waha-import.js');
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-memory-'));
fs.chmodSync(scratch, 0o755); // as root, the embedded server runs as the postgres user

function startSim(messages) {
  const chats = Math.max(100, Math.round(messages / 100));
  const child = spawn(
    process.execPath,
    [bin, 'sim', '--port', '0', '--chats', String(chats), '--messages', String(messages)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/[\d.:]+)/.exec(out);
      if (match) resolve({ url: match[1], chats, stop: () => child.kill('SIGINT') });
    });
    child.on('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
}

function importOnce(url, messages) {
  const args = [
    bin,
    'run',
    '--waha-url',
    url,
    '--strategy',
    'streaming',
    '--concurrency',
    '32',
    '--json',
    '--fresh',
    '--schema',
    `memory_${messages}`,
    '--checkpoint',
    path.join(scratch, `checkpoint-${messages}.json`),
  ];
  const env = {
    ...process.env,
    WAHA_IMPORT_DATA_DIR: process.env.DATABASE_URL ? undefined : path.join(scratch, 'postgres'),
  };
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1);
      if (code !== 0 || !last) reject(new Error(`import exited with ${code}`));
      else resolve(JSON.parse(last).summary);
    }),
  );
}

try {
  for (const messages of sizes.length ? sizes : [100_000, 1_000_000]) {
    const sim = await startSim(messages);
    try {
      const summary = await importOnce(sim.url, messages);
      console.log(
        `${messages.toLocaleString('en-US')} messages in ${sim.chats.toLocaleString('en-US')} chats: ` +
          `peak RSS ${summary.peakRssMb} MB, ${summary.dbTransactions} transactions, ` +
          `${(summary.elapsedMs / 1000).toFixed(1)} s, ${Math.round(summary.messagesPerSecond)} msgs/s`,
      );
    } finally {
      sim.stop();
    }
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
