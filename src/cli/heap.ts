import v8 from 'node:v8';

/**
 * How far V8 lets the old generation grow past what the last full collection left alive, in percent.
 *
 * An import allocates fast (every page parsed, every batch built) and keeps little (the chat list, a
 * batch or two, a page per fetcher: some 40 MB at 1,000,000 messages in 10,000 chats). V8's default
 * growth rule reads a high allocation rate as a reason to give the heap up to four times what is live,
 * so peak RSS followed the length of the run rather than what it holds: 250-300 MB at 1,000,000
 * messages, where a fixed growth of this much keeps it near 160 MB (scripts/memory.mjs; README
 * "Memory"). It is a growth rule, not a cap: a run that must hold more (a huge chat list) still gets
 * the heap it needs, in more steps.
 */
export const HEAP_GROWING_PERCENT = 100;

/** V8 flags that say how big the heap may be; when the user gives one, theirs rules alone. */
const HEAP_FLAGS = /^--(heap[-_]growing[-_]percent|max[-_]old[-_]space[-_]size|max[-_]heap[-_]size)(=|$)/;

/**
 * Sets the growth rule for this process (a long import: `run`, `worker`, `bench`), unless node was
 * started with a heap flag of its own (on its command line or in NODE_OPTIONS). V8 reads the rule at
 * each full collection, so setting it once the process runs takes effect from the next one. Returns
 * whether it was set.
 */
export function limitHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): boolean {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].some((flag) => HEAP_FLAGS.test(flag));
  if (given) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
