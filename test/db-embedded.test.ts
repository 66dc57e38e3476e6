import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { DatabaseError, LockedError } from '../src/errors.js';
import {
  defaultDataDir,
  openDatabase,
  passwordFileFor,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from '../src/db/index.js';

const isRoot = process.getuid?.() === 0;
const temporaryDirs: string[] = [];

/** A fresh directory the server's user can enter (as root it is the `postgres` user, not us). */
async function temporaryDir(mode = 0o755): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'waha-import-embedded-test-'));
  await fs.chmod(dir, mode);
  temporaryDirs.push(dir);
  return dir;
}

async function query<T>(url: string, run: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    return await run(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Running, as opposed to gone or a zombie nobody reaped (an orphan's parent is whoever adopted it). */
async function isRunning(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat !== undefined && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

async function lockFile(dataDir: string): Promise<string> {
  return fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
}

function withPid(lock: string, pid: number): string {
  return lock.replace(/^\d+/, String(pid));
}

async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

function serverUserIds(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  const id = (flag: string): number =>
    Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout);
  return { uid: id('-u'), gid: id('-g') };
}

afterAll(async () => {
  for (const dir of temporaryDirs) await fs.rm(dir, { recursive: true, force: true });
});

describe('defaultDataDir', () => {
  test('follows XDG_DATA_HOME, else ~/.local/share; root gets a directory the server user can reach', () => {
    expect(defaultDataDir({ XDG_DATA_HOME: '/data/home' }, false)).toBe('/data/home/waha-import/postgres');
    expect(defaultDataDir({}, false)).toBe(path.join(os.homedir(), '.local/share/waha-import/postgres'));
    expect(defaultDataDir({ XDG_DATA_HOME: '/root/.local/share' }, true)).toBe(
      '/var/lib/waha-import/postgres',
    );
  });
});

describe('startEmbeddedPostgres', () => {
  let dataDir: string;
  let server: EmbeddedPostgres | undefined;

  beforeAll(async () => {
    dataDir = path.join(await temporaryDir(), 'nested', 'postgres');
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  test('initialises a new directory, serves on 127.0.0.1 with a password kept beside it, stops cleanly', async () => {
    server = await startEmbeddedPostgres({ dataDir });
    const url = new URL(server.url);
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).toBe(server.port);
    expect(url.password.length).toBeGreaterThanOrEqual(24);

    const passwordFile = passwordFileFor(dataDir);
    expect(path.dirname(passwordFile)).toBe(path.dirname(dataDir));
    expect((await fs.readFile(passwordFile, 'utf8')).trim()).toBe(decodeURIComponent(url.password));
    expect((await fs.stat(passwordFile)).mode & 0o777).toBe(0o600);

    await query(server.url, async (sql) => {
      await sql`create table kept (value text)`;
      await sql`insert into kept values ('still here')`;
      const [row] = await sql`select current_setting('listen_addresses') as listen, version() as version`;
      expect(row).toMatchObject({ listen: '127.0.0.1' });
    });
    // Wrong password: the server really checks it.
    const wrong = new URL(server.url);
    wrong.password = 'not-the-password';
    await expect(query(wrong.toString(), (sql) => sql`select 1`)).rejects.toThrow(/password/);

    await server.stop();
    await server.stop();
    await expect(fs.access(path.join(dataDir, 'postmaster.pid'))).rejects.toThrow();
    await expect(query(server.url, (sql) => sql`select 1`)).rejects.toThrow();
  });

  test('starts again on the same directory with the same password and data, on a new port', async () => {
    server = await startEmbeddedPostgres({ dataDir });
    const rows = await query(server.url, (sql) => sql`select value from kept`);
    expect(rows).toEqual([{ value: 'still here' }]);
  });

  test('the log option receives the server output; without it nothing is printed', async () => {
    const lines: string[] = [];
    server = await startEmbeddedPostgres({ dataDir, log: (line) => lines.push(line) });
    expect(lines.join('\n')).toMatch(/listening on IPv4 address "127\.0\.0\.1"/);
  });

  test('a stale postmaster.pid whose process is dead does not block the start', async () => {
    server = await startEmbeddedPostgres({ dataDir });
    const lock = await lockFile(dataDir);
    await server.stop();
    await fs.writeFile(path.join(dataDir, 'postmaster.pid'), withPid(lock, await deadPid()));

    server = await startEmbeddedPostgres({ dataDir });
    expect(await query(server.url, (sql) => sql`select value from kept`)).toHaveLength(1);
  });

  test('a stale postmaster.pid naming a pid now used by another process does not block the start', async () => {
    server = await startEmbeddedPostgres({ dataDir });
    const lock = await lockFile(dataDir);
    await server.stop();
    // Same user as the server, so PostgreSQL's own check would take it for a live server.
    const sleeper = spawn('sleep', ['60'], { ...serverUserIds(), stdio: 'ignore' });
    try {
      await fs.writeFile(path.join(dataDir, 'postmaster.pid'), withPid(lock, sleeper.pid!));
      server = await startEmbeddedPostgres({ dataDir });
      expect(await query(server.url, (sql) => sql`select value from kept`)).toHaveLength(1);
    } finally {
      sleeper.kill();
    }
  });

  test('a server killed outright is recovered on the next start, with its data', async () => {
    server = await startEmbeddedPostgres({ dataDir });
    const postmasterPid = Number.parseInt(await lockFile(dataDir), 10);
    process.kill(postmasterPid, 'SIGKILL');
    await server.stop();

    // Its backends notice the dead postmaster and exit on their own; until then the directory is in use.
    let started: EmbeddedPostgres | undefined;
    for (let attempt = 0; !started; attempt++) {
      try {
        started = await startEmbeddedPostgres({ dataDir });
      } catch (error) {
        if (attempt > 50 || !/already in use/.test(String(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    server = started;
    expect(await query(server.url, (sql) => sql`select value from kept`)).toHaveLength(1);
  });

  test('refuses a directory another server is running on, without disturbing it', async () => {
    server = await startEmbeddedPostgres({ dataDir });
    const error = await startEmbeddedPostgres({ dataDir }).catch((e: unknown) => e);
    // Exit 4, like every other "another run holds it".
    expect(error).toBeInstanceOf(LockedError);
    expect((error as LockedError).message).toMatch(/already in use by a running server \(pid \d+\)/);
    expect((error as LockedError).hint).toMatch(/kill -INT \d+/);
    expect(await query(server.url, (sql) => sql`select value from kept`)).toHaveLength(1);
  });

  test('a server left running by a waha-import killed with SIGKILL is taken over by the next start', async () => {
    // Another process starts the server and is killed before it can stop it, as a killed run would be.
    const embedded = new URL('../dist/db/embedded.js', import.meta.url).href;
    const script = `const { startEmbeddedPostgres } = await import(${JSON.stringify(embedded)});
      const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} });
      console.log('ready ' + server.port);
      setInterval(() => {}, 1000);`;
    const owner = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      owner.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        if (chunk.includes('ready')) resolve();
      });
      owner.on('exit', (code) => reject(new Error(`the owner process exited early (${code})`)));
    });
    const orphanPid = Number.parseInt(await lockFile(dataDir), 10);
    owner.kill('SIGKILL');
    await new Promise((resolve) => owner.once('close', resolve));
    expect(await isRunning(orphanPid)).toBe(true); // the orphan runs on

    server = await startEmbeddedPostgres({ dataDir });
    expect(await query(server.url, (sql) => sql`select value from kept`)).toHaveLength(1);
    expect(await isRunning(orphanPid)).toBe(false); // stopped, not left beside the new one
  });

  test('a server whose killed owner left a pid now used by a live process is still taken over', async () => {
    const embedded = new URL('../dist/db/embedded.js', import.meta.url).href;
    const script = `const { startEmbeddedPostgres } = await import(${JSON.stringify(embedded)});
      const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} });
      console.log('ready ' + server.port);
      setInterval(() => {}, 1000);`;
    const owner = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      owner.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        if (chunk.includes('ready')) resolve();
      });
      owner.on('exit', (code) => reject(new Error(`the owner process exited early (${code})`)));
    });
    const orphanPid = Number.parseInt(await lockFile(dataDir), 10);
    owner.kill('SIGKILL');
    await new Promise((resolve) => owner.once('close', resolve));
    // The owner's pid now names a live process (pid 1 always runs), as after pid reuse or in a container.
    const ownerFile = `${dataDir}.owner`;
    const record = JSON.parse(await fs.readFile(ownerFile, 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ pid: owner.pid, startTicks: expect.any(Number) });
    await fs.writeFile(ownerFile, JSON.stringify({ ...record, pid: 1 }));

    server = await startEmbeddedPostgres({ dataDir });
    expect(await query(server.url, (sql) => sql`select value from kept`)).toHaveLength(1);
    expect(await isRunning(orphanPid)).toBe(false);
  });

  test('openDatabase without a URL runs on the embedded server and stops it on close', async () => {
    const database = await openDatabase({ dataDir });
    expect(database.embedded).toBe(true);
    expect(database.displayUrl).toMatch(/^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres$/);
    expect(await database.sql`select value from kept`).toEqual([{ value: 'still here' }]);
    await database.close();
    await expect(fs.access(path.join(dataDir, 'postmaster.pid'))).rejects.toThrow();
  });
});

describe('two processes starting on one fresh directory at once', () => {
  test('one initialises and serves it; the other exits as locked; the password file fits the server', async () => {
    const dataDir = path.join(await temporaryDir(), 'postgres');
    const embedded = new URL('../dist/db/embedded.js', import.meta.url).href;
    const script = `const { startEmbeddedPostgres } = await import(${JSON.stringify(embedded)});
      try {
        const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} });
        console.log('ready ' + server.url);
        process.stdin.once('data', async () => { await server.stop(); process.exit(0); });
      } catch (error) {
        console.log('failed ' + error.name + ': ' + error.message);
        process.exit(0);
      }`;
    const start = () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const said = new Promise<string>((resolve) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          if (out.includes('\n')) resolve(out.trim());
        });
      });
      return { child, said };
    };
    const both = [start(), start()];
    const said = await Promise.all(both.map((one) => one.said));
    try {
      const ready = said.filter((line) => line.startsWith('ready '));
      const failed = said.filter((line) => line.startsWith('failed '));
      expect(ready).toHaveLength(1);
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatch(/^failed LockedError: /);
      const url = ready[0]!.slice('ready '.length);
      expect((await fs.readFile(passwordFileFor(dataDir), 'utf8')).trim()).toBe(
        decodeURIComponent(new URL(url).password),
      );
      expect(await query(url, (sql) => sql`select 1 as one`)).toEqual([{ one: 1 }]);
    } finally {
      for (const { child } of both) {
        if (child.exitCode === null) {
          const gone = new Promise((resolve) => child.once('close', resolve));
          child.stdin.write('stop\n');
          await gone;
        }
      }
    }
  });
});

describe('startEmbeddedPostgres refuses unusable directories clearly', () => {
  test('a directory that is not empty and holds no cluster', async () => {
    const dataDir = path.join(await temporaryDir(), 'postgres');
    await fs.mkdir(dataDir);
    await fs.writeFile(path.join(dataDir, 'notes.txt'), 'mine');
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/is not empty but holds no PostgreSQL/);
    expect(await fs.readFile(path.join(dataDir, 'notes.txt'), 'utf8')).toBe('mine');
  });

  test('a cluster whose password file is gone', async () => {
    const dataDir = path.join(await temporaryDir(), 'postgres');
    await fs.mkdir(dataDir);
    await fs.writeFile(path.join(dataDir, 'PG_VERSION'), '18\n');
    const error = await startEmbeddedPostgres({ dataDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).message).toContain(passwordFileFor(dataDir));
  });

  (isRoot ? test : test.skip)(
    'as root, a directory the postgres user cannot reach names it and the fix',
    async () => {
      const privateDir = await temporaryDir(0o700);
      const dataDir = path.join(privateDir, 'postgres');
      const error = await startEmbeddedPostgres({ dataDir }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).message).toContain(`it may not enter ${privateDir}`);
      expect((error as DatabaseError).hint).toContain(`chmod o+x ${privateDir}`);
      await expect(fs.access(path.join(dataDir, 'PG_VERSION'))).rejects.toThrow();
    },
  );
});
