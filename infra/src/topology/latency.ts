/**
 * Default one-way delay between two regions, the way real round trips grow with distance:
 * great-circle distance / the speed of light in fibre (about 2/3 c: 200 km per ms) × a route
 * factor (cables do not follow great circles, and routers add their share; 1.5 by default).
 * iad–lhr (5,900 km) comes out at 44 ms one way, 88 ms round trip (the real one: 75–80 ms).
 */
export const fibreKmPerMs = 200;
export const defaultRouteFactor = 1.5;
const earthRadiusKm = 6371;

export interface Coordinates {
  lat: number;
  lon: number;
}

/** Great-circle distance (haversine), in km. */
export function greatCircleKm(from: Coordinates, to: Coordinates): number {
  const rad = (degrees: number) => (degrees * Math.PI) / 180;
  const dLat = rad(to.lat - from.lat);
  const dLon = rad(to.lon - from.lon);
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(rad(from.lat)) * Math.cos(rad(to.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * earthRadiusKm * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** One-way delay in ms, rounded to 0.1 ms. */
export function derivedLatencyMs(
  from: Coordinates,
  to: Coordinates,
  routeFactor = defaultRouteFactor,
): number {
  return Math.round((greatCircleKm(from, to) / fibreKmPerMs) * routeFactor * 10) / 10;
}
