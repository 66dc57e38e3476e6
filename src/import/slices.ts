import { setMaxListeners } from 'node:events';
import type { ConcurrencyLimit } from '../concurrency/limiter.js';
import type { ChatRecord, MessageRecord, TimeWindow } from '../domain.js';
import type { ChatPagingOptions, MessagePage, WahaClient } from '../waha/client.js';
import { resumePointOf, spansToFetch, type ResumePoint, type Span } from './resume-point.js';

/**
 * Time-sliced fetching of long chats.
 *
 * A chat's pages come one after another (each request's `lte` is the previous page's oldest second), so
 * however wide the fan-out, the longest chat alone takes as many round trips as it has pages. A chat can
 * instead be read as several disjoint spans of time at once, each paged exactly as a whole chat is (the
 * same keyset paging, dense seconds, end rule: src/waha/client.ts), so each keeps the no-skip guarantee
 * within its span, and the spans together cover the chat's window second for second.
 *
 * How spans are chosen, without knowing where a chat's messages lie: a chat starts as one slice. Each
 * page tells the density of the span it came from (messages per second); a slice whose span left is
 * estimated at `2 x minPages` pages or more may hand the older part of it to new slices, split at equal
 * time, as many as the estimate allows (each at least `minPages` pages) up to `maxSlices` per chat. The
 * old slice's lower bound rises at once (src/waha/client.ts `floor`), so nothing is fetched twice but
 * the page in flight. A new slice can be split again once its own first page shows its density, so a
 * chat whose messages bunch in one period ends up with its slices there.
 *
 * A slice costs one request more than the same span inside a bigger slice (its end), and a span that
 * turns out empty costs one request for nothing: slices are made only from WAHA capacity that would
 * otherwise wait. The `SliceBudget` counts fetchers (chats being read and extra slices) against the
 * run's concurrency limit; a split takes a free place at once, or waits for the next one, ahead of new
 * chats (so the longest chats are split early, not only once the other chats are done), and the
 * chats' fan-out is held at the limit minus the slices, so the total never goes past the limit.
 *
 * Resume: pages of all slices are yielded as one stream, each with the spans left once it and the pages
 * before it are committed; strategies commit a chat's pages in the order they were yielded, so the spans
 * of the last committed page are exact. A checkpoint records them (a plain cursor when one span is left
 * that reaches the window's start, as before slicing).
 */

/** `--max-slices` by default: slices one chat may be read in at once. */
export const DEFAULT_MAX_SLICES = 8;

/** Where a chat's span left is estimated large, the pages each slice but the oldest takes at a split. */
export const MAX_PAGES_AT_SPLIT = 8;

/** A chat estimated to have at least this many pages left waits for places ahead of new chats. */
export const PRIORITY_PAGES = 8;

/** The fewest pages a new slice is expected to hold: below that, its end request costs too much. */
export const MIN_SLICE_PAGES = 2;

export interface SlicingOptions {
  /** Slices one chat may be read in at once; 1 = never slice. */
  maxSlices: number;
  /** The fewest pages each new slice should hold, by the estimate (default MIN_SLICE_PAGES). */
  minPages?: number;
}

/** What slicing did in a run, for the summary and the bench. */
export interface SlicingStats {
  /** Slices made by splitting (a chat read in one slice makes none). */
  slices: number;
  /** Chats read in more than one slice. */
  chatsSliced: number;
  /** Slices that ended without bringing a message (their end request was all they cost). */
  emptySlices: number;
}

/**
 * Counts fetchers (chats in flight and their extra slices) against a concurrency limit, and gives places
 * to slices before new chats. `fanOut` is the limit the strategy's fan-out of chats goes by: the limit
 * minus the extra slices and the places they wait for.
 */
export class SliceBudget {
  private chats = 0;
  private extra = 0;
  private readonly waiting: Array<{ grant: () => void; cancelled: boolean }> = [];
  private readonly listeners = new Set<(limit: number) => void>();
  readonly stats: SlicingStats = { slices: 0, chatsSliced: 0, emptySlices: 0 };

  /** The run's limit now. */
  get limit(): number {
    return typeof this.base === 'number' ? this.base : Math.max(1, Math.floor(this.base.limit));
  }

  private get pending(): number {
    return this.waiting.length;
  }

  /** The limit for the chats' fan-out. */
  readonly fanOut: ConcurrencyLimit;

  private readonly unsubscribe: (() => void) | undefined;

  constructor(private readonly base: number | ConcurrencyLimit) {
    this.unsubscribe = typeof base === 'number' ? undefined : base.onChange(() => this.changed());
    const fanOutLimit = (): number => this.fanOutLimit();
    const listeners = this.listeners;
    this.fanOut = {
      get limit(): number {
        return fanOutLimit();
      },
      onChange(listener) {
        listeners.add(listener);
        return () => void listeners.delete(listener);
      },
    };
  }

  private fanOutLimit(): number {
    return Math.max(1, this.limit - this.extra - this.pending);
  }

  /** A chat starts being fetched. */
  chatStarted(): void {
    this.chats++;
  }

  /** A chat's fetching ended (its last page, a failure, an abort). */
  chatEnded(): void {
    this.chats--;
    this.grantFree();
  }

  /** Places free now for slices. */
  free(): number {
    return Math.max(0, this.limit - this.chats - this.extra);
  }

  /** Takes up to `n` places at once; returns how many it took. */
  take(n: number): number {
    const taken = Math.min(n, this.free());
    this.extra += taken;
    return taken;
  }

  /**
   * Asks for a place when one frees; `grant` is called once it is taken for the caller (the caller then
   * owns it and gives it back with `release`). Returns the cancel function.
   */
  wait(grant: () => void): () => void {
    const entry = { grant, cancelled: false };
    this.waiting.push(entry);
    return () => {
      if (entry.cancelled) return;
      entry.cancelled = true;
      const at = this.waiting.indexOf(entry);
      if (at >= 0) this.waiting.splice(at, 1);
      this.changed();
    };
  }

  /** A slice's place is given back. */
  release(n = 1): void {
    this.extra -= n;
    this.grantFree();
  }

  private grantFree(): void {
    while (this.waiting.length > 0 && this.free() > 0) {
      const entry = this.waiting.shift()!;
      if (entry.cancelled) continue;
      entry.cancelled = true;
      this.extra++;
      entry.grant();
    }
    this.changed();
  }

  private changed(): void {
    const value = this.fanOutLimit();
    for (const listener of [...this.listeners]) listener(value);
  }

  /** Stops following the run's limit (the run ended). */
  dispose(): void {
    this.unsubscribe?.();
    this.listeners.clear();
  }
}

/** One page of a chat read in slices: the spans left once it (and every page before it) is committed. */
export interface SlicedPage {
  messages: MessageRecord[];
  resume: ResumePoint;
  last: boolean;
}

/** The paging settings of one chat, less what slicing sets per slice. */
export type SlicePagingOptions = Omit<ChatPagingOptions, 'window' | 'resumeAtS' | 'floor' | 'signal'>;

interface Slice {
  /** Its lower bound; raised when its older part goes to new slices. */
  floor: { fromS: number };
  /** Its upper bound left: the resume second of its last page yielded (inclusive). */
  cursor: number;
  /** The newest message time it brought: where its history starts. */
  topS: number | undefined;
  /** Messages it brought. */
  brought: number;
  /** Its last page was full: more history most likely follows (the estimate counts only then). */
  full: boolean;
  pages: AsyncGenerator<MessagePage>;
  controller: AbortController;
  /** Stops following the chat's signal (a slice that ended needs no abort: that would build an error). */
  detach: () => void;
  next: Promise<{ slice: Slice; result: IteratorResult<MessagePage> }> | undefined;
  /** Split off another slice (or started from a checkpoint's span): counted in the stats. */
  split: boolean;
}

/**
 * A chat's messages in `window`, from `resume` (absent: all of it), as one stream of pages in slices
 * (see the top of this file). Without `slicing` (or with maxSlices 1) it reads the chat in one slice at
 * a time: the spans of a resume point one after another.
 */
export async function* slicedPages(
  waha: WahaClient,
  session: string,
  chat: ChatRecord,
  paging: SlicePagingOptions,
  window: TimeWindow,
  resume: ResumePoint | undefined,
  slicing: { options: SlicingOptions; budget: SliceBudget } | undefined,
  signal: AbortSignal,
): AsyncGenerator<SlicedPage> {
  const backlog = spansToFetch(window, resume);
  if (backlog.length === 0) {
    yield { messages: [], resume: [], last: true };
    return;
  }
  const budget = slicing?.budget;
  const maxSlices = Math.max(1, slicing?.options.maxSlices ?? 1);
  const minPages = Math.max(1, slicing?.options.minPages ?? MIN_SLICE_PAGES);
  const active: Slice[] = [];
  /** Places held beyond the chat's own. */
  let extraHeld = 0;
  let cancelWait: (() => void) | undefined;
  let granted: (() => void) | undefined;
  let grants = 0;
  let sliced = false;
  /** Ids of messages without a time this chat sent: any slice may be served them. */
  const timeless = new Set<string>();

  const start = (span: Span, split: boolean): void => {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    const onAbort = (): void => controller.abort(signal.reason);
    const detach = (): void => signal.removeEventListener('abort', onAbort);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    controller.signal.addEventListener('abort', detach, { once: true });
    const floor = { fromS: span[0] };
    const slice: Slice = {
      floor,
      cursor: span[1],
      topS: undefined,
      brought: 0,
      full: false,
      controller,
      detach,
      next: undefined,
      split,
      pages: waha.chatMessages(session, chat, {
        ...paging,
        window: { fromS: span[0], toS: span[1] },
        floor,
        signal: controller.signal,
      }),
    };
    if (split && budget) {
      budget.stats.slices++;
      if (!sliced) {
        sliced = true;
        budget.stats.chatsSliced++;
      }
    }
    active.push(slice);
    pull(slice);
  };
  const pull = (slice: Slice): void => {
    slice.next = slice.pages.next().then((result) => ({ slice, result }));
    // A rejection is handled where it is awaited; this keeps an early one from being "unhandled".
    slice.next.catch(() => undefined);
  };
  /** Pages a slice is expected to hold still, from the density of what it brought; 0 when unknown. */
  const pagesLeft = (slice: Slice): number => {
    if (!slice.full || slice.topS === undefined || slice.brought === 0) return 0;
    const consumed = Math.max(1, slice.topS - slice.cursor + 1);
    const left = slice.cursor - slice.floor.fromS + 1;
    return ((slice.brought / consumed) * left) / paging.pageSize;
  };
  /** How many parts the slice's span left is worth (1: not worth splitting). */
  const partsFor = (slice: Slice): number => {
    const left = slice.cursor - slice.floor.fromS + 1;
    return Math.max(
      1,
      Math.min(Math.floor(pagesLeft(slice) / minPages), left, maxSlices - active.length + 1),
    );
  };
  /**
   * Hands the older part of `slice` to `places` new slices (or fewer, as the estimate allows). Where the
   * estimate is modest, the span left is cut at equal time. Where it is large (a window reaching far
   * before a chat's history, or a very long chat), the old slice keeps about MAX_PAGES_AT_SPLIT pages at
   * the density seen and one new slice takes the rest: a window holding little far back costs one
   * empty slice, not many, and each part is split again once its own pages show how dense it is.
   */
  const split = (slice: Slice, places: number): number => {
    let parts = Math.min(partsFor(slice), places + 1);
    if (parts < 2) return 0;
    const from = slice.floor.fromS;
    const top = slice.cursor;
    const width = top - from + 1;
    const perSlicePages = Math.min(Math.max(pagesLeft(slice) / parts, minPages), MAX_PAGES_AT_SPLIT);
    const secondsPerPage = width / Math.max(1, pagesLeft(slice));
    const chunk = Math.max(1, Math.round(perSlicePages * secondsPerPage));
    // Bounds from the newest down: bounds[0] = top + 1, bounds[parts] = from.
    const bounds: number[] = [top + 1];
    if (chunk * parts < width) {
      // Far more time left than the estimate can vouch for: the old slice keeps a part of the pages seen
      // and one new slice takes the rest, split again once its pages show history there.
      parts = 2;
      for (let i = 1; i < parts; i++) bounds.push(top + 1 - i * chunk);
    } else {
      for (let i = 1; i < parts; i++) bounds.push(top + 1 - Math.round((i * width) / parts));
    }
    bounds.push(from);
    // The old slice keeps the newest part, where it is reading; the new ones take the rest.
    slice.floor.fromS = bounds[1]!;
    for (let i = 1; i < parts; i++) start([bounds[i + 1]!, bounds[i]! - 1], true);
    return parts - 1;
  };
  const bestToSplit = (): Slice | undefined => {
    let best: Slice | undefined;
    let bestPages = 0;
    for (const slice of active) {
      if (partsFor(slice) < 2) continue;
      const pages = pagesLeft(slice);
      if (pages > bestPages) {
        best = slice;
        bestPages = pages;
      }
    }
    return best;
  };
  /** Uses places: backlog spans first, then splits; asks for one more place while still worth it. */
  const spread = (): void => {
    if (!budget || maxSlices <= 1) return;
    for (;;) {
      if (active.length >= maxSlices) break;
      if (backlog.length > 0) {
        if (budget.take(1) === 0) break;
        extraHeld++;
        start(backlog.shift()!, true);
        continue;
      }
      const best = bestToSplit();
      if (!best) break;
      const wanted = partsFor(best) - 1;
      const taken = budget.take(wanted);
      if (taken === 0) break;
      const used = split(best, taken);
      extraHeld += used;
      if (used < taken) budget.release(taken - used);
    }
    // Only a long chat (or a checkpoint's spans) waits for a place ahead of new chats: the longest chats
    // set the import's length; a short one is split only from places nobody else wants.
    const best = bestToSplit();
    const stillWorth =
      active.length < maxSlices &&
      (backlog.length > 0 || (best !== undefined && pagesLeft(best) >= PRIORITY_PAGES));
    if (stillWorth && !cancelWait && budget.limit > 1) {
      cancelWait = budget.wait(() => {
        cancelWait = undefined;
        grants++;
        granted?.();
      });
    } else if (!stillWorth && cancelWait) {
      cancelWait();
      cancelWait = undefined;
    }
  };
  const useGrant = (): void => {
    grants--;
    if (active.length < maxSlices && backlog.length > 0) {
      extraHeld++;
      start(backlog.shift()!, true);
      return;
    }
    const best = active.length < maxSlices ? bestToSplit() : undefined;
    if (best && split(best, 1) === 1) extraHeld++;
    else budget!.release(1);
  };
  const spansLeft = (): Span[] => {
    const spans: Span[] = active.map((s) => [s.floor.fromS, s.cursor] as const);
    for (const span of backlog) spans.push(span);
    return spans.filter(([from, to]) => from <= to).sort((a, b) => b[0] - a[0]);
  };

  budget?.chatStarted();
  try {
    start(backlog.shift()!, false);
    spread();
    for (;;) {
      while (grants > 0) useGrant();
      const waitGrant = new Promise<'grant'>((resolve) => {
        granted = () => resolve('grant');
        if (grants > 0) resolve('grant');
      });
      const first = await Promise.race([...active.map((s) => s.next!), waitGrant]);
      granted = undefined;
      if (first === 'grant') continue;
      const { slice, result } = first;
      slice.next = undefined;
      if (result.done) {
        // The pager ends only after its last page: a slice ending otherwise would leave its span
        // unread while the chat looked complete. Fail loudly rather than lose it.
        throw new Error(
          `chat ${chat.id}: the time slice ${slice.floor.fromS}..${slice.cursor} ended without its last page`,
        );
      }
      const page = result.value;
      let messages = page.messages;
      if (sliced) {
        messages = messages.filter((m) => {
          if (m.timestampS !== null) return true;
          if (timeless.has(m.id)) return false;
          timeless.add(m.id);
          return true;
        });
      } else if (maxSlices > 1) {
        for (const m of messages) if (m.timestampS === null) timeless.add(m.id);
      }
      for (const m of messages) {
        if (m.timestampS !== null && (slice.topS === undefined || m.timestampS > slice.topS)) {
          slice.topS = Math.min(m.timestampS, slice.cursor);
        }
      }
      slice.brought += messages.length;
      if (page.last) {
        active.splice(active.indexOf(slice), 1);
        slice.detach();
        if (slice.split && slice.brought === 0 && budget) budget.stats.emptySlices++;
        if (backlog.length > 0) start(backlog.shift()!, slice.split || sliced);
        else if (active.length > 0 && extraHeld > 0) {
          extraHeld--;
          budget!.release(1);
        }
      } else {
        slice.cursor = Math.min(slice.cursor, page.resumeAtS);
        slice.full = page.full === true;
      }
      const last = active.length === 0;
      if (!last) spread();
      yield { messages, resume: last ? [] : resumePointOf(window, spansLeft()), last };
      if (last) return;
      if (!page.last) pull(slice);
    }
  } finally {
    granted = undefined;
    cancelWait?.();
    for (const slice of active) slice.controller.abort();
    await Promise.allSettled(active.map((s) => s.next).filter((n) => n !== undefined));
    await Promise.allSettled(active.map((s) => s.pages.return(undefined)));
    if (budget) {
      budget.release(extraHeld + grants);
      budget.chatEnded();
    }
  }
}
