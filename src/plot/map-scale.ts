/** Integer magnification of a map picture: small maps are enlarged to ~400 px, none wider than 2000 px. */
export function mapScale(width: number, height: number): number {
  return Math.max(1, Math.min(Math.ceil(400 / height), Math.floor(2000 / width)));
}

/**
 * Largest map picture drawn, map pixels per side: larger maps are drawn by blocks
 * (src/plot/maps.ts), so a picture costs the same memory whatever the image size.
 */
export const PICTURE_MAX_SIDE = 1000;
