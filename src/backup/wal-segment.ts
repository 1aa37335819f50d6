/** WAL segment names from LSNs (16 MB segments unless the server says otherwise). Pure. */
const hex8 = (n: number | bigint) => n.toString(16).toUpperCase().padStart(8, '0');

/** The name of the segment on `timeline` holding byte `lsn`. */
export function segmentOf(timeline: number, lsn: bigint, segSize = 16 * 1024 * 1024): string {
  const segNo = lsn / BigInt(segSize);
  const perLog = 0x100000000n / BigInt(segSize);
  return `${hex8(timeline)}${hex8(segNo / perLog)}${hex8(segNo % perLog)}`;
}

/** Where a WAL file lives in the repository (without the compression suffix). */
export function walRepoPath(name: string): string {
  if (name.endsWith('.history')) return `wal/history/${name}`;
  return `wal/${name.slice(0, 16)}/${name}`;
}

/** The position (log and segment, without the timeline) of a segment name, for ordering across timelines. */
export function segmentPosition(name: string): string {
  return name.slice(8, 24);
}

export const SEGMENT_NAME = /^[0-9A-F]{24}$/;
