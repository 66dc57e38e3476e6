import { chunked } from './chunked.js';
import { streaming } from './streaming.js';
import { parallel, sequential } from './per-chat.js';
import type { Strategy, StrategyName } from './types.js';

const STRATEGIES: Record<StrategyName, Strategy> = { sequential, parallel, chunked, streaming };

export function availableStrategies(): Strategy[] {
  return Object.values(STRATEGIES);
}

/** The strategy of a validated name (config/ only lets STRATEGY_NAMES through). */
export function strategyNamed(name: StrategyName): Strategy {
  return STRATEGIES[name];
}

export function getStrategy(name: string): Strategy | undefined {
  return Object.hasOwn(STRATEGIES, name) ? STRATEGIES[name as StrategyName] : undefined;
}
