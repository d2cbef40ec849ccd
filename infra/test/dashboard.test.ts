import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dashboards = join(repo, 'infra', 'grafana');

/** Every README of the repository: their Metrics sections name what each server exports. */
function readmes(): string {
  const texts: string[] = [];
  for (const group of ['apps', 'packages'])
    for (const name of readdirSync(join(repo, group)))
      try {
        texts.push(readFileSync(join(repo, group, name, 'README.md'), 'utf8'));
      } catch {
        // a folder without a README is the monorepo rules' business
      }
  return texts.join('\n');
}

/** The metric names a PromQL expression reads (not functions, labels or keywords). */
function metricsOf(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/\b(by|without)\s*\([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b([a-z][a-z0-9_]*)\b(?!\s*\()/g)]
    .map((match) => match[1]!)
    .filter((name) => name.includes('_') && !/^\d/.test(name));
}

// The Grafana dashboards in infra/grafana read only metrics the servers export: each name in a
// panel's query is documented in a workspace README (a histogram by its name, read through
// `_bucket`), so a renamed or removed metric fails here instead of leaving an empty panel.
describe('Grafana dashboards', () => {
  const documented = readmes();
  for (const file of readdirSync(dashboards).filter((name) => name.endsWith('.json'))) {
    it(`${file}: every panel queries documented metrics`, () => {
      const dashboard = JSON.parse(readFileSync(join(dashboards, file), 'utf8')) as {
        panels: { type: string; title: string; targets?: { expr: string }[] }[];
      };
      const graphs = dashboard.panels.filter((panel) => panel.type !== 'row');
      expect(graphs.length).toBeGreaterThan(0);
      const unknown: string[] = [];
      for (const panel of graphs) {
        expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
        for (const { expr } of panel.targets ?? [])
          for (const metric of metricsOf(expr)) {
            const base = metric.replace(/_(bucket|sum|count)$/, '');
            if (!documented.includes(metric) && !documented.includes(base))
              unknown.push(`${panel.title}: ${metric}`);
          }
      }
      expect(unknown).toEqual([]);
    });
  }
});
