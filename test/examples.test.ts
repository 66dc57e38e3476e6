import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { RUN_OPTIONS } from '../src/config/run-config.js';

/**
 * examples/docker-compose.yml (WAHA, PostgreSQL and the importer on a schedule) parses, and its importer
 * is configured only with environment variables and flags waha-import really reads. No Docker needed.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Service {
  image?: string;
  environment?: Record<string, unknown>;
  command?: string[];
}

const compose = parse(fs.readFileSync(path.join(ROOT, 'examples/docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
};

describe('examples/docker-compose.yml', () => {
  it('has WAHA, PostgreSQL and the importer', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['importer', 'postgres', 'waha']);
    expect(compose.services.waha!.image).toMatch(/^devlikeapro\/waha(:|$)/);
    expect(compose.services.postgres!.image).toMatch(/^postgres:/);
  });

  it("gives the importer only environment variables waha-import reads, WAHA's own key included", () => {
    const known = new Set(RUN_OPTIONS.flatMap((spec) => (spec.env ? [spec.env] : [])));
    const importer = compose.services.importer!;
    const names = Object.keys(importer.environment ?? {});
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((name) => !known.has(name))).toEqual([]);
    // The key the importer sends is the one WAHA was started with.
    expect(importer.environment!.WAHA_API_KEY).toBe(compose.services.waha!.environment!.WAHA_API_KEY);
    expect(String(importer.environment!.WAHA_URL)).toBe('http://waha:3000');
  });

  it('runs waha-import run with flags it has', () => {
    const script = compose.services.importer!.command!.join(' ');
    expect(script).toMatch(/waha-import\.js run /);
    const flags = new Set(RUN_OPTIONS.map((spec) => spec.flag.split(' ')[0]));
    const used = [...script.matchAll(/ (--[a-z-]+)/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((flag) => !flags.has(flag))).toEqual([]);
  });
});
