/**
 * Region groups a placement expression may name (`lhr,eu`), with each region's coordinates so
 * a full region can point at the nearest ones with room. The codes are Fly's.
 */
export const regionGroups: Record<string, string[]> = {
  na: [
    'atl',
    'bos',
    'den',
    'dfw',
    'ewr',
    'iad',
    'lax',
    'mia',
    'ord',
    'phx',
    'qro',
    'sea',
    'sjc',
    'yul',
    'yyz',
  ],
  sa: ['bog', 'eze', 'gdl', 'gig', 'gru', 'scl'],
  eu: ['ams', 'arn', 'cdg', 'fra', 'lhr', 'mad', 'otp', 'waw'],
  as: ['bom', 'hkg', 'nrt', 'sin'],
  oc: ['syd'],
  af: ['jnb'],
};

export const regionCoordinates: Record<string, [lat: number, lon: number]> = {
  atl: [33.6, -84.4],
  bos: [42.4, -71.0],
  den: [39.9, -104.7],
  dfw: [32.9, -97.0],
  ewr: [40.7, -74.2],
  iad: [38.9, -77.5],
  lax: [33.9, -118.4],
  mia: [25.8, -80.3],
  ord: [42.0, -87.9],
  phx: [33.4, -112.0],
  qro: [20.6, -100.2],
  sea: [47.4, -122.3],
  sjc: [37.4, -121.9],
  yul: [45.5, -73.6],
  yyz: [43.7, -79.6],
  bog: [4.7, -74.1],
  eze: [-34.8, -58.5],
  gdl: [20.5, -103.3],
  gig: [-22.8, -43.2],
  gru: [-23.4, -46.5],
  scl: [-33.4, -70.8],
  ams: [52.4, 4.8],
  arn: [59.6, 17.9],
  cdg: [49.0, 2.5],
  fra: [50.0, 8.6],
  lhr: [51.5, -0.5],
  mad: [40.5, -3.6],
  otp: [44.6, 26.1],
  waw: [52.2, 21.0],
  bom: [19.1, 72.9],
  hkg: [22.3, 113.9],
  nrt: [35.8, 140.4],
  sin: [1.4, 104.0],
  syd: [-33.9, 151.2],
  jnb: [-26.1, 28.2],
};

/**
 * The regions an expression allows: `iad`, `iad,dfw`, `lhr,eu` (codes and group names, comma
 * separated), or `any` (undefined: every region). Unknown words are kept as region codes: a
 * worker may serve a region this table does not list.
 */
export function regionsOf(expression: string | undefined): Set<string> | undefined {
  if (expression === undefined || expression.trim() === '' || expression.trim() === 'any') {
    return undefined;
  }
  const regions = new Set<string>();
  for (const word of expression.split(',').map((part) => part.trim().toLowerCase())) {
    if (word === '') continue;
    if (word === 'any') return undefined;
    for (const region of regionGroups[word] ?? [word]) regions.add(region);
  }
  return regions;
}

/** Great-circle distance in km, for ordering regions by nearness; unknown regions sort last. */
export function distanceKm(from: string, to: string): number {
  const a = regionCoordinates[from];
  const b = regionCoordinates[to];
  if (!a || !b) return Number.MAX_VALUE;
  const rad = Math.PI / 180;
  const [dLat, dLon] = [(b[0] - a[0]) * rad, (b[1] - a[1]) * rad];
  const h =
    Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * rad) * Math.cos(b[0] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.sqrt(h));
}
