/** The WAHA simulator used by tests, the benchmark and `waha-import sim`. */

export * from './dataset.js';
export * from './server.js';
export { CHAT_SORT_FIELDS, ENGINES, SESSION_STATUSES } from './routes.js';
