/**
 * Prometheus text exposition (format 0.0.4) for metric families: HELP/TYPE lines once per family, label values and
 * HELP text escaped as the format requires, values as Go's exporter prints them (NaN, +Inf, -Inf). Pure.
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

export type MetricType = 'gauge' | 'counter' | 'untyped';
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels: Labels;
  /** null: PostgreSQL returned NULL (postgres_exporter prints NaN for such a value). */
  readonly value: number | null;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly Sample[];
}

/** Label values: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed are escaped (a quote is literal there). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(v: number | null): string {
  if (v === null || Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** `{a="x",b="y"}`, or nothing for no labels; `constant` labels come first. */
export function formatLabels(labels: Labels, constant: Labels = {}): string {
  const parts = Object.entries({ ...constant, ...labels }).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/**
 * The families as exposition lines; a family without samples keeps its HELP/TYPE (as client_golang does not, but
 * Prometheus accepts it). Families of the same name must not repeat: the caller merges them.
 */
export function renderFamilies(families: readonly Family[], constant: Labels = {}): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) out.push(`${f.name}${formatLabels(s.labels, constant)} ${formatValue(s.value)}`);
  }
  return out.length ? out.join('\n') + '\n' : '';
}
