/** The position (log and segment) of a segment name, ordered like the WAL itself whatever the timeline. */
export function segmentPosition(name: string): string {
  return name.slice(8, 24);
}
