/** PostgreSQL LSNs ("16/B374D848") as byte positions (numbers; exact up to 2^53 bytes of WAL). */
export function parseLsn(text: string | null | undefined): number | null {
  if (!text) return null;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) return null;
  return parseInt(m[1] as string, 16) * 0x1_0000_0000 + parseInt(m[2] as string, 16);
}

export function formatLsn(pos: number): string {
  const hi = Math.floor(pos / 0x1_0000_0000);
  const lo = pos % 0x1_0000_0000;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
