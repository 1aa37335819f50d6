/**
 * The metric names a PromQL expression reads, roughly — enough to check that a dashboard's or an alert's
 * expressions refer to series an agent or a proxy really exports (examples/, assets.test.ts and the integration
 * test observe-assets). Not a parser: string literals, label matchers `{…}`, ranges `[…]` and the label lists of
 * by/without/on/ignoring/group_left/group_right are removed; what remains that looks like an identifier and is not
 * a function call, an aggregation or a keyword is a metric name. Pure.
 */
import { readFileSync } from 'node:fs';

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
  'atan2',
]);
// Aggregations may put `by (…)` between their name and their parenthesis, so they are not always followed by `(`.
const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
]);

export function metricNames(expr: string): string[] {
  let e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  e = e.replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ' '); // Grafana variables outside strings
  const names = new Set<string>();
  for (const m of e.matchAll(/(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const id = m[1] as string;
    if (m[2] || KEYWORDS.has(id.toLowerCase()) || AGGREGATIONS.has(id)) continue;
    names.add(id);
  }
  return [...names].sort();
}

/** Every `expr` of a Grafana dashboard's panels (rows' nested panels included). */
export function dashboardExpressions(dashboard: unknown): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  const walk = (panels: unknown): void => {
    if (!Array.isArray(panels)) return;
    for (const p of panels as Array<{ title?: string; targets?: Array<{ expr?: string }>; panels?: unknown }>) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ panel: p.title ?? '?', expr: t.expr });
      walk(p.panels);
    }
  };
  walk((dashboard as { panels?: unknown }).panels);
  return out;
}

/** Every alert's (and recording rule's) expression in a Prometheus rules file, which is YAML. */
export function ruleExpressions(rulesYaml: unknown): Array<{ rule: string; expr: string }> {
  const groups = (
    rulesYaml as { groups?: Array<{ rules?: Array<{ alert?: string; record?: string; expr?: string }> }> }
  ).groups;
  return (groups ?? []).flatMap((g) =>
    (g.rules ?? []).map((r) => ({ rule: r.alert ?? r.record ?? '?', expr: String(r.expr ?? '') })),
  );
}

/** The metric names of a Prometheus text exposition (`name{labels} value` and `name value` lines). */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)[{\s]/.exec(line);
    if (m) names.add(m[1] as string);
  }
  return names;
}

export const readJson = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));
