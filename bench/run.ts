/**
 * `npm run bench [-- name…]`: each scenario is measured next to a baseline run in the same process
 * and the same minute, and reported as a ratio, because this machine is shared and noisy. Results
 * are printed and written to bench/results.json.
 */
import { writeFileSync } from "node:fs";
import { scenarios } from "./scenarios";

export interface Measurement {
  ops: number;
  ms: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** What the ratio compares against, measured in the same run. */
  baseline: string;
  run(): Promise<{ subject: Measurement; baseline: Measurement; notes?: Record<string, unknown> }>;
}

const perSecond = (m: Measurement) => (m.ops / m.ms) * 1000;

async function main() {
  const wanted = process.argv.slice(2);
  const chosen = wanted.length ? scenarios.filter((s) => wanted.includes(s.name)) : scenarios;
  if (wanted.length && chosen.length !== wanted.length) {
    console.error(`unknown scenario; known: ${scenarios.map((s) => s.name).join(", ")}`);
    process.exit(2);
  }
  const results = [];
  for (const s of chosen) {
    const { subject, baseline, notes } = await s.run();
    const r = {
      name: s.name,
      description: s.description,
      perSecond: Math.round(perSecond(subject)),
      baseline: s.baseline,
      baselinePerSecond: Math.round(perSecond(baseline)),
      ratio: Number((perSecond(subject) / perSecond(baseline)).toFixed(3)),
      ...notes,
    };
    results.push(r);
    console.log(`${r.name.padEnd(16)} ${String(r.perSecond).padStart(9)}/s   baseline ${r.baseline}: ${r.baselinePerSecond}/s   ratio ${r.ratio}`);
  }
  writeFileSync(new URL("./results.json", import.meta.url), `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
}

await main();
