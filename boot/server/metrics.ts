// A minimal Prometheus registry for the boot server: counters and gauges with labels, rendered in
// the text exposition format (version 0.0.4). boot/ takes no dependencies beyond node built-ins and
// TypeBox, and the service needs only these two metric types, so no client library.

type Labels = Record<string, string>;

interface Family {
  help: string;
  type: "counter" | "gauge";
  values: Map<string, { labels: Labels; value: number }>;
  /** Gauges read at scrape time. */
  collect?: () => Array<{ labels: Labels; value: number }>;
}

export class Metrics {
  readonly #families = new Map<string, Family>();

  /** Declares a metric; adding to an undeclared one throws (a typo would hide a metric). */
  define(name: string, type: Family["type"], help: string, collect?: Family["collect"]): void {
    this.#families.set(name, { help, type, values: new Map(), collect });
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const family = this.#family(name);
    const key = labelKey(labels);
    const entry = family.values.get(key);
    if (entry) entry.value += by;
    else family.values.set(key, { labels, value: by });
  }

  set(name: string, labels: Labels, value: number): void {
    this.#family(name).values.set(labelKey(labels), { labels, value });
  }

  /** The current value (0 when never set), for tests and health checks. */
  get(name: string, labels: Labels = {}): number {
    return this.#family(name).values.get(labelKey(labels))?.value ?? 0;
  }

  /** The Prometheus text format. */
  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.#families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      const samples = [...family.values.values(), ...(family.collect?.() ?? [])];
      for (const { labels, value } of samples) {
        lines.push(`${name}${formatLabels(labels)} ${value}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }

  #family(name: string): Family {
    const family = this.#families.get(name);
    if (!family) throw new Error(`metric ${name} is not defined`);
    return family;
  }
}

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}
