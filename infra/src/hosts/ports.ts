/**
 * The ports every host's servers listen on, on the host's own address. Fixed like on real
 * servers (units and the bootstrap command use the same ones), which is safe here: the address
 * exists only inside the host's namespace, which belongs to one harness run, so nothing else on
 * the machine can hold or collide with these ports.
 */
export const hostPorts = {
  /** fly-proxy edge: user traffic (HTTP/1.1 and h2c). */
  edge: 80,
  flaps: 4280,
  flyd: 4281,
  backhaul: 4282,
  corrosionApi: 8787,
  /** corrosion's SWIM and broadcasts (UDP) and sync (TCP). */
  gossip: 8788,
} as const;
