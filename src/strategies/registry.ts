import { chunked } from './chunked.js';
import { streaming } from './streaming.js';
import { parallel, sequential } from './per-chat.js';
import type { Strategy, StrategyName } from './types.js';

const STRATEGIES: Record<StrategyName, Strategy> = { sequential, parallel, chunked, streaming };

export function availableStrategies(): Strategy[] {
  return Object.values(STRATEGIES);
}

export function getStrategy(name: string): Strategy | undefined {
  return Object.hasOwn(STRATEGIES, name) ? STRATEGIES[name as StrategyName] : undefined;
}
