/** Integer magnification of a map picture: small maps are enlarged to ~400 px, none wider than 2000 px. */
export function mapScale(width: number, height: number): number {
  return Math.max(1, Math.min(Math.ceil(400 / height), Math.floor(2000 / width)));
}
