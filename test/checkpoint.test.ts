import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Checkpoint,
  defaultCheckpointPath,
  readCheckpoint,
  type CheckpointKey,
} from '../src/checkpoint/checkpoint.js';
import { CheckpointError, LockedError } from '../src/errors.js';
import { acquireLockFile } from '../src/lock/lock-file.js';
import { processStartTicks } from '../src/util/process-identity.js';

/** The repository: the other process of the lock race runs the built module. */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const KEY: CheckpointKey = {
  session: 'default',
  schema: 'waha',
  windowRequest: { days: 30 },
  window: { fromS: 1_790_000_000, toS: 1_792_592_000 },
  pageSize: 100,
  waha: { url: 'http://localhost:3000/', session: 'default' },
};
const DATABASE = { instance: 'token-1', systemIdentifier: '7312345678901234567' };

function tempFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-cp-')), 'sub', 'checkpoint.json');
}

describe('checkpoint', () => {
  it('is written only at the first commit, with mode 0600, and resumed by the same window request', async () => {
    const file = tempFile();
    const first = Checkpoint.open(file, KEY, { fresh: false, minIntervalMs: 0 });
    expect(first.resumed).toBeUndefined();
    expect(fs.existsSync(file)).toBe(false);
    first.checkpoint.bind(DATABASE);

    await first.checkpoint.recordCommit({
      chatsCompleted: ['a@c.us'],
      chatsInProgress: [{ chatId: 'b@c.us', resumeAt: KEY.window.toS - 300 }],
      messages: 350,
    });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(readCheckpoint(file)).toMatchObject({
      completedChats: ['a@c.us'],
      inProgress: { 'b@c.us': KEY.window.toS - 300 },
      transactions: 1,
      messagesCommitted: 350,
      status: 'running',
      version: 4,
      id: first.checkpoint.id,
      waha: KEY.waha,
      database: DATABASE,
    });

    // A later run asks for "--days 30" again: its own window moved on, but it continues the stored one.
    const later = Checkpoint.open(
      file,
      { ...KEY, window: { fromS: KEY.window.fromS + 999, toS: KEY.window.toS + 999 } },
      { fresh: false },
    );
    expect(later.window).toEqual(KEY.window);
    expect(later.resumed).toMatchObject({ completedChats: 1, inProgressChats: 1 });
    expect(later.checkpoint.isCompleted('a@c.us')).toBe(true);
    expect(later.checkpoint.isCompleted('b@c.us')).toBe(false);
    // The time cursor is where the chat continues; a chat never started has none.
    expect(later.checkpoint.resumeAt('b@c.us')).toBe(KEY.window.toS - 300);
    expect(later.checkpoint.resumeAt('c@c.us')).toBeUndefined();

    await later.checkpoint.recordCommit({ chatsCompleted: ['b@c.us'], chatsInProgress: [], messages: 20 });
    await later.checkpoint.complete();
    expect(readCheckpoint(file)).toMatchObject({
      status: 'complete',
      inProgress: {},
      completedChats: ['a@c.us', 'b@c.us'],
    });
    // After a complete run, the next one starts a new window.
    const next = Checkpoint.open(file, { ...KEY, window: { fromS: 5, toS: 6 } }, { fresh: false });
    expect(next.resumed).toBeUndefined();
    expect(next.window).toEqual({ fromS: 5, toS: 6 });
  });

  it('refuses an unfinished checkpoint of another window, and --fresh discards it', async () => {
    const file = tempFile();
    const { checkpoint } = Checkpoint.open(file, KEY, { fresh: false });
    checkpoint.bind(DATABASE);
    await checkpoint.recordCommit({ chatsCompleted: ['a@c.us'], chatsInProgress: [], messages: 1 });
    await checkpoint.flush();
    expect(() => Checkpoint.open(file, { ...KEY, windowRequest: { days: 7 } }, { fresh: false })).toThrow(
      /belongs to an unfinished run of another window or page size \(--days 30, page size 100; this run asks for --days 7/,
    );
    expect(() => Checkpoint.open(file, { ...KEY, schema: 'other' }, { fresh: false })).toThrow(
      CheckpointError,
    );
    expect(
      Checkpoint.open(file, { ...KEY, windowRequest: { days: 7 } }, { fresh: true }).resumed,
    ).toBeUndefined();
  });

  it('of a run that ended partial: resumed by the same request, started over by another, refused again once resumed', async () => {
    const file = tempFile();
    const { checkpoint } = Checkpoint.open(file, KEY, { fresh: false });
    checkpoint.bind(DATABASE);
    await checkpoint.recordCommit({ chatsCompleted: ['a@c.us'], chatsInProgress: [], messages: 1 });
    await checkpoint.endPartial();
    expect(readCheckpoint(file)).toMatchObject({ status: 'running', endedPartial: true });
    // Another request: only failed chats are left, and it reads them; not refused.
    const other = Checkpoint.open(file, { ...KEY, windowRequest: { days: 7 } }, { fresh: false });
    expect(other.resumed).toBeUndefined();
    expect(other.restarted?.reason).toBe(
      'it ended with chats that could not be imported, and this run asks for another window (--days 7, page size 100), which reads them',
    );
    // The same request resumes it; once resumed (and killed), it is under way again: another is refused.
    const same = Checkpoint.open(file, KEY, { fresh: false });
    expect(same.resumed).toMatchObject({ completedChats: 1 });
    same.checkpoint.bind(DATABASE);
    await same.checkpoint.recordCommit({
      chatsCompleted: [],
      chatsInProgress: [{ chatId: 'b@c.us', resumeAt: KEY.window.toS - 60 }],
      messages: 1,
    });
    await same.checkpoint.flush();
    expect(readCheckpoint(file)!.endedPartial).toBeUndefined();
    expect(() => Checkpoint.open(file, { ...KEY, windowRequest: { days: 7 } }, { fresh: false })).toThrow(
      /belongs to an unfinished run of another window/,
    );
  });

  it('of another request, one of the two incremental: resumed as that request, to be finished first', async () => {
    const file = tempFile();
    const sunday = {
      ...KEY,
      windowRequest: { days: 8 },
      window: { fromS: KEY.window.toS - 8 * 86_400, toS: KEY.window.toS },
    };
    const { checkpoint } = Checkpoint.open(file, sunday, { fresh: false });
    checkpoint.bind(DATABASE);
    await checkpoint.recordCommit({ chatsCompleted: ['a@c.us'], chatsInProgress: [], messages: 1 });
    await checkpoint.flush();
    const incremental = { ...KEY, windowRequest: { days: 30, incrementalOverlapS: 3600 } };
    const opened = Checkpoint.open(file, incremental, { fresh: false });
    expect(opened.resumed).toMatchObject({
      completedChats: 1,
      otherRequest: { request: { days: 8 }, description: '--days 8' },
    });
    expect(opened.window).toEqual({ fromS: KEY.window.toS - 8 * 86_400, toS: KEY.window.toS });
    // The page size still has to match.
    expect(() => Checkpoint.open(file, { ...incremental, pageSize: 50 }, { fresh: false })).toThrow(
      /belongs to an unfinished run of another window or page size/,
    );
  });

  it('a partial end with nothing committed leaves no file', async () => {
    const file = tempFile();
    const { checkpoint } = Checkpoint.open(file, KEY, { fresh: false });
    await checkpoint.endPartial();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('ignores an unfinished checkpoint that committed nothing', () => {
    const file = tempFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const empty = {
      format: 'waha-import-checkpoint',
      version: 1,
      session: 'default',
      schema: 'waha',
      windowRequest: { days: 30 },
      window: { ...KEY.window, from: '', to: '' },
      pageSize: 100,
      status: 'running',
      startedAt: '',
      updatedAt: '',
      completedChats: [],
      inProgress: {},
      transactions: 0,
      messagesCommitted: 0,
    };
    fs.writeFileSync(file, JSON.stringify(empty));
    expect(
      Checkpoint.open(file, { ...KEY, windowRequest: { days: 7 } }, { fresh: false }).resumed,
    ).toBeUndefined();
  });

  it('names the file and the way out when it is damaged', () => {
    const file = tempFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"format": "waha-import-checkpoint", "vers');
    expect(() => Checkpoint.open(file, KEY, { fresh: false })).toThrow(
      new RegExp(`the checkpoint ${file} is not valid JSON`),
    );
    fs.writeFileSync(
      file,
      JSON.stringify({ format: 'waha-import-checkpoint', version: 1, session: 'default' }),
    );
    expect(() => readCheckpoint(file)).toThrow(/is damaged: a required field is missing or wrong/);
    fs.writeFileSync(file, JSON.stringify({ hello: 'world' }));
    expect(() => readCheckpoint(file)).toThrow(/is not a waha-import checkpoint/);
    // --fresh never reads it.
    expect(Checkpoint.open(file, KEY, { fresh: true }).resumed).toBeUndefined();
  });

  it('fails with a clear error when its directory is read-only', async () => {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions; a path through a regular file fails the same way for everyone.
      const blocker = tempFile();
      fs.mkdirSync(path.dirname(blocker), { recursive: true });
      fs.writeFileSync(blocker, 'not a directory');
      expect(() => Checkpoint.open(path.join(blocker, 'checkpoint.json'), KEY, { fresh: false })).toThrow(
        /cannot read the checkpoint .*not a directory/,
      );
      return;
    }
    const file = tempFile();
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o500 });
    const { checkpoint } = Checkpoint.open(file, KEY, { fresh: false });
    await expect(
      checkpoint.recordCommit({ chatsCompleted: [], chatsInProgress: [], messages: 0 }),
    ).rejects.toThrow(/cannot write the checkpoint/);
  });
});

describe('a checkpoint is a hint, never the truth', () => {
  /** An unfinished checkpoint of KEY, bound to DATABASE, with one commit; `edit` changes the saved JSON. */
  async function saved(edit: (data: Record<string, unknown>) => void = () => undefined): Promise<string> {
    const file = tempFile();
    const { checkpoint } = Checkpoint.open(file, KEY, { fresh: false, minIntervalMs: 0 });
    checkpoint.bind(DATABASE);
    await checkpoint.recordCommit({
      chatsCompleted: ['a@c.us'],
      chatsInProgress: [{ chatId: 'b@c.us', resumeAt: KEY.window.toS - 60 }],
      messages: 120,
    });
    const data = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    edit(data);
    fs.writeFileSync(file, JSON.stringify(data));
    return file;
  }

  it('a forged or contradictory file is not resumed: the window starts over, with the reason', async () => {
    const day = 86_400;
    const forgeries: Array<[string, (data: Record<string, unknown>) => void, RegExp]> = [
      [
        'days: 30 but a window of three years',
        (d) => (d.window = { fromS: KEY.window.toS - 3 * 365 * day, toS: KEY.window.toS, from: '', to: '' }),
        /is not the --days 30 it records/,
      ],
      [
        'an --until that is not the window end',
        (d) => {
          d.windowRequest = { sinceS: KEY.window.fromS, untilS: KEY.window.toS + 5 };
        },
        /not at the --until/,
      ],
      [
        'a --since that is not the window start',
        (d) => (d.windowRequest = { sinceS: KEY.window.fromS - 1 }),
        /not at the --since/,
      ],
      ['negative transactions', (d) => (d.transactions = -3), /counts are not counts/],
      ['absurd messages', (d) => (d.messagesCommitted = 1e300), /counts are not counts/],
      [
        'a window beyond the year 9999',
        (d) => (d.window = { fromS: 1e15, toS: 1e15 + 30 * day, from: '', to: '' }),
        /is not a window/,
      ],
      ['a window ending before it starts', (d) => (d.window = { fromS: 10, toS: 5 }), /is not a window/],
      ['a chat completed twice', (d) => (d.completedChats = ['a@c.us', 'a@c.us']), /completed twice/],
      ['both --days and --since', (d) => (d.windowRequest = { days: 30, sinceS: 1 }), /not one a run makes/],
    ];
    for (const [name, edit, reason] of forgeries) {
      const file = await saved(edit);
      // The key asks for what the forged file claims, so nothing but its own contradiction can refuse it.
      const data = readCheckpoint(file)!;
      const opened = Checkpoint.open(file, { ...KEY, windowRequest: data.windowRequest }, { fresh: false });
      expect([name, opened.resumed]).toEqual([name, undefined]);
      expect([name, opened.restarted?.reason]).toEqual([name, expect.stringMatching(reason)]);
      expect(opened.window).toEqual(KEY.window);
      expect(opened.checkpoint.isCompleted('a@c.us')).toBe(false);
    }
    // Unforged, the same file is resumed.
    const honest = Checkpoint.open(await saved(), KEY, { fresh: false });
    expect(honest.restarted).toBeUndefined();
    expect(honest.resumed).toMatchObject({ completedChats: 1, inProgressChats: 1 });
  });

  it('a checkpoint of another WAHA (the simulator, another URL or session) starts over', async () => {
    const file = await saved();
    for (const waha of [
      { url: 'simulator', session: 'default' },
      { url: 'http://other:3000/', session: 'default' },
    ]) {
      const opened = Checkpoint.open(file, { ...KEY, waha }, { fresh: false });
      expect(opened.resumed).toBeUndefined();
      expect(opened.restarted?.reason).toMatch(
        /belongs to another WAHA \(http:\/\/localhost:3000\/, session "default"/,
      );
    }
  });

  it('a chat read in time slices continues from its spans; a version 3 file (cursors only) is resumed as it is', async () => {
    const { fromS, toS } = KEY.window;
    const spans = [
      [toS - 500, toS - 100],
      [fromS + 1000, fromS + 5000],
      [fromS, fromS + 10],
    ];
    const file = await saved((d) => {
      (d.inProgress as Record<string, unknown>)['s@c.us'] = spans;
      (d.inProgress as Record<string, unknown>)['far@c.us'] = [[fromS - 100, fromS + 5]];
    });
    expect(readCheckpoint(file)?.version).toBe(4);
    const opened = Checkpoint.open(file, KEY, { fresh: false });
    expect(opened.resumed).toMatchObject({ inProgressChats: 3 });
    expect(opened.checkpoint.resumeAt('s@c.us')).toEqual(spans);
    expect(opened.checkpoint.resumeAt('b@c.us')).toBe(toS - 60);
    // A span reaching outside the window (a forged or foreign file): the chat starts over.
    expect(opened.checkpoint.resumeAt('far@c.us')).toBeUndefined();
    await opened.checkpoint.recordCommit({
      chatsCompleted: [],
      chatsInProgress: [{ chatId: 's@c.us', resumeAt: [[fromS, fromS + 10]] }],
      messages: 5,
    });
    await opened.checkpoint.flush();
    expect(readCheckpoint(file)?.inProgress['s@c.us']).toEqual([[fromS, fromS + 10]]);

    const v3 = await saved((d) => (d.version = 3));
    const resumed = Checkpoint.open(v3, KEY, { fresh: false });
    expect(resumed.resumed).toMatchObject({ completedChats: 1, inProgressChats: 1 });
    expect(resumed.checkpoint.resumeAt('b@c.us')).toBe(toS - 60);

    for (const damaged of [[[5, 1]], [], [[1, 2, 3]], [['1', 2]], 'x']) {
      const bad = await saved((d) => ((d.inProgress as Record<string, unknown>)['s@c.us'] = damaged));
      expect(() => readCheckpoint(bad)).toThrow(/damaged/);
    }
  });

  it('files of versions 1 and 2 name no database: read, but never resumed', async () => {
    for (const version of [1, 2]) {
      const file = await saved((d) => {
        d.version = version;
        delete d.id;
        delete d.waha;
        delete d.database;
      });
      expect(readCheckpoint(file)).toMatchObject({ completedChats: ['a@c.us'], database: null });
      const opened = Checkpoint.open(file, KEY, { fresh: false });
      expect(opened.resumed).toBeUndefined();
      expect(opened.restarted?.reason).toMatch(/older waha-import/);
    }
  });

  it('is believed only when the database confirms its instance, cluster and every commit', async () => {
    const file = await saved((d) => {
      d.transactions = 4;
      d.messagesCommitted = 500;
    });
    const { checkpoint } = Checkpoint.open(file, KEY, { fresh: false });
    const evidence = {
      schema: 'waha',
      identity: DATABASE,
      progress: { transactions: 4, messages: 500 },
    };
    expect(checkpoint.disbelief(evidence)).toBeUndefined();
    // The checkpoint lags the database (saves are throttled): fine.
    expect(
      checkpoint.disbelief({ ...evidence, progress: { transactions: 5, messages: 510 } }),
    ).toBeUndefined();
    // The cluster's identifier unknown (not permitted to read): the token and the counters decide.
    expect(
      checkpoint.disbelief({ ...evidence, identity: { ...DATABASE, systemIdentifier: null } }),
    ).toBeUndefined();
    expect(checkpoint.disbelief({ ...evidence, identity: { ...DATABASE, instance: 'token-2' } })).toMatch(
      /is not the one its commits went to/,
    );
    expect(checkpoint.disbelief({ ...evidence, identity: { ...DATABASE, systemIdentifier: '1' } })).toMatch(
      /another PostgreSQL cluster/,
    );
    expect(checkpoint.disbelief({ ...evidence, progress: undefined })).toMatch(
      /holds only 0 of the 4 transactions \(0 of 500 messages\)/,
    );
    expect(checkpoint.disbelief({ ...evidence, progress: { transactions: 3, messages: 400 } })).toMatch(
      /holds only 3 of the 4 transactions/,
    );
    expect(checkpoint.disbelief({ ...evidence, progress: { transactions: 4, messages: 499 } })).toMatch(
      /\(499 of 500 messages\)/,
    );
  });

  it('--simulate runs have a default file of their own', () => {
    expect(defaultCheckpointPath('/w', 'default', 'waha')).toBe(
      '/w/.waha-import/checkpoint-default-waha.json',
    );
    expect(defaultCheckpointPath('/w', 'default', 'waha', { simulate: true })).toBe(
      '/w/.waha-import/checkpoint-simulate-default-waha.json',
    );
  });
});

describe('files the tool creates', () => {
  it('never follows a symlink planted at the temporary name, and removes temporary files of dead runs', async () => {
    const file = tempFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const victim = path.join(path.dirname(file), 'victim');
    fs.writeFileSync(victim, 'precious');
    // The names a writer of this process would use, old and new style, point at the victim.
    fs.symlinkSync(victim, `${file}.${process.pid}.tmp`);
    // Left by a run that was killed between creating its temporary file and renaming it.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const stale = `${file}.${dead.stdout}.0a1b2c.tmp`;
    fs.writeFileSync(stale, 'half');

    const { checkpoint } = Checkpoint.open(file, KEY, { fresh: false, minIntervalMs: 0 });
    await checkpoint.recordCommit({ chatsCompleted: ['a@c.us'], chatsInProgress: [], messages: 1 });
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    expect(fs.lstatSync(file).isFile()).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(readCheckpoint(file)?.completedChats).toEqual(['a@c.us']);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(`${file}.${process.pid}.tmp`)).toBe(false);
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['checkpoint.json', 'victim']);
  });

  it('a lock file name holding a symlink is never written through', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-lock-'));
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'precious');
    const file = path.join(dir, 'cp.json.lock');
    fs.symlinkSync(victim, file);
    const lock = acquireLockFile(file, 'session "default"');
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    expect(fs.lstatSync(file).isFile()).toBe(true);
    lock.release();
  });
});

describe('lock file', () => {
  it('is created with mode 0600 holding pid, host and start time, and removed on release', () => {
    const file = path.join(
      fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-lock-')),
      'dir',
      'cp.json.lock',
    );
    const lock = acquireLockFile(file, 'session "default"');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      pid: process.pid,
      host: os.hostname(),
      bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      startTicks: processStartTicks(process.pid),
      startedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    });
    lock.release();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('is never seen without its owner: a run taking it while another is writing it stays out', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-lock-'));
    const file = path.join(dir, 'cp.json.lock');
    const gate = path.join(dir, 'go-on');
    // Another process takes the lock and is stopped (until `gate` exists) at its first write: with the
    // lock created empty and written afterwards, the lock was there and held by nobody this run could
    // name, so this run took it over, and the other went on to hold it too.
    const other = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        import fs from 'node:fs';
        const [file, gate, module] = process.argv.slice(1);
        const { acquireLockFile } = await import(module);
        const write = fs.writeSync;
        let first = true;
        fs.writeSync = (fd, ...rest) => {
          if (first) {
            first = false;
            write(1, 'writing\\n');
            const nap = new Int32Array(new SharedArrayBuffer(4));
            while (!fs.existsSync(gate)) Atomics.wait(nap, 0, 0, 10);
          }
          return write(fd, ...rest);
        };
        try {
          const lock = acquireLockFile(file, 'session "default"');
          write(1, 'held\\n');
          lock.release();
        } catch (error) {
          write(1, error.name + '\\n');
        }`,
        file,
        gate,
        path.join(REPO, 'dist/lock/lock-file.js'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let said = '';
    other.stdout.setEncoding('utf8').on('data', (chunk: string) => (said += chunk));
    const exited = new Promise((resolve) => other.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      other.stdout.on('data', () => said.includes('writing') && resolve());
      other.once('exit', () => reject(new Error(`the other process ended first: ${said}`)));
    });
    const lock = acquireLockFile(file, 'session "default"');
    fs.writeFileSync(gate, '');
    await exited;
    expect(said).toBe('writing\nLockedError\n');
    expect(lock.tookOverFrom).toBeUndefined();
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
    // Nothing is left beside it.
    expect(fs.readdirSync(dir).sort()).toEqual(['go-on']);
  });

  it('removes the aside copy a killed run left before linking it, not one of a live run', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-lock-'));
    const file = path.join(dir, 'cp.json.lock');
    // pid 1 always runs; a pid past pid_max never does.
    const dead = `${file}.4194305.0a1b2c.tmp`;
    const live = `${file}.1.0a1b2c.tmp`;
    fs.writeFileSync(dead, '{}');
    fs.writeFileSync(live, '{}');
    const lock = acquireLockFile(file, 'session "default"');
    lock.release();
    expect(fs.readdirSync(dir).sort()).toEqual([path.basename(live)]);
  });

  it('is taken over when its live pid is not its owner: our own pid, another start time, another boot', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-lock-')), 'cp.json.lock');
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    // pid 1 always runs; only its start time and the boot tell whether it is the owner.
    const pid1Ticks = processStartTicks(1)!;
    const plant = (owner: Record<string, unknown>): void =>
      fs.writeFileSync(file, JSON.stringify({ host: os.hostname(), startedAt: 'then', ...owner }));
    const notOwners: Array<Record<string, unknown>> = [
      // A container where node is pid 1 in every run, or a pid handed to us after a reboot.
      { pid: process.pid },
      { pid: process.pid, bootId, startTicks: processStartTicks(process.pid)! + 1 },
      // A live pid whose process started at another time: pid reuse.
      { pid: 1, bootId, startTicks: pid1Ticks + 1 },
      // Taken before the last boot.
      { pid: 1, bootId: 'another-boot', startTicks: pid1Ticks },
    ];
    for (const owner of notOwners) {
      plant(owner);
      const lock = acquireLockFile(file, 'session "default"');
      expect(lock.tookOverFrom).toMatchObject(owner);
      lock.release();
      expect(fs.existsSync(file)).toBe(false);
    }
    // The same pid, boot and start time is the owner, and so is a pid-only lock of a live process.
    for (const owner of [{ pid: 1, bootId, startTicks: pid1Ticks }, { pid: 1 }]) {
      plant(owner);
      expect(() => acquireLockFile(file, 'session "default"')).toThrow(LockedError);
      expect(fs.existsSync(file)).toBe(true);
    }
  });
});
