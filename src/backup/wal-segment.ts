/** Segment names compared by position (log and segment, without the timeline), for retention across timelines. */
export const SEGMENT_NAME = /^[0-9A-F]{24}$/;

/** The position (log and segment) of a segment name, ordered like the WAL itself whatever the timeline. */
export function segmentPosition(name: string): string {
  return name.slice(8, 24);
}
