/**
 * Clock offsets between sites, pure (NTP-style): pgkeel reads each site leader's `clock_timestamp()` several times,
 * noting its own clock just before sending and just after the answer; the server's reading is taken to be at the
 * midpoint, so offset = server − (sent + received) / 2, uncertain by ± rtt / 2. The sample with the smallest round
 * trip is kept. Offsets are relative to pgkeel's own clock, so the skew between two sites is the difference of
 * theirs (pgkeel's clock cancels out). last-update-wins compares commit timestamps from the sites' clocks.
 */
import type { Problem } from './schema.js';

export interface ClockSample {
  /** Local clock (ms) just before the query was sent. */
  readonly sentMs: number;
  /** The server's clock_timestamp() (ms since the epoch). */
  readonly serverMs: number;
  /** Local clock (ms) when the answer arrived. */
  readonly receivedMs: number;
}

export interface ClockOffset {
  readonly site: string;
  /** Site clock minus local clock, ms. */
  readonly offsetMs: number;
  /** Round trip of the sample used, ms. */
  readonly rttMs: number;
}

export const DEFAULT_MAX_CLOCK_OFFSET_MS = 500;

/** The offset from the sample with the smallest round trip. */
export function offsetFrom(site: string, samples: readonly ClockSample[]): ClockOffset {
  if (samples.length === 0) throw new RangeError(`no clock samples from site ${site}`);
  const best = samples.reduce((a, b) => (b.receivedMs - b.sentMs < a.receivedMs - a.sentMs ? b : a));
  return {
    site,
    offsetMs: best.serverMs - (best.sentMs + best.receivedMs) / 2,
    rttMs: best.receivedMs - best.sentMs,
  };
}

/** The two sites furthest apart, when further than `maxMs`; one problem naming both and every site's offset. */
export function clockProblems(offsets: readonly ClockOffset[], maxMs: number): Problem[] {
  if (offsets.length < 2) return [];
  const lo = offsets.reduce((a, b) => (b.offsetMs < a.offsetMs ? b : a));
  const hi = offsets.reduce((a, b) => (b.offsetMs > a.offsetMs ? b : a));
  const skew = hi.offsetMs - lo.offsetMs;
  if (skew <= maxMs) return [];
  return [
    {
      code: 'MESH_CLOCK_SKEW',
      site: hi.site,
      message: `the clocks of sites ${hi.site} and ${lo.site} are ${Math.round(skew)} ms apart (bound ${maxMs} ms; ${clockText(offsets)}); last-update-wins would pick the wrong row within that window — fix NTP on the hosts`,
    },
  ];
}

export function clockText(offsets: readonly ClockOffset[]): string {
  const f = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(1)}`;
  return offsets.map((o) => `${o.site} ${f(o.offsetMs)} ms ±${(o.rttMs / 2).toFixed(1)}`).join(', ');
}
