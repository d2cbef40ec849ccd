import { integer, type SchemaNode } from './rules.js';

/** Fly's CPU kinds: shared vCPUs (oversubscribed) and performance ones (dedicated cores). */
export const cpuKinds = ['shared', 'performance'] as const;
export type CpuKind = (typeof cpuKinds)[number];

/**
 * Fly's machine sizes (`fly platform vm-sizes`): the CPU counts of each kind, and the memory a
 * guest may have per CPU — shared-cpu-1x 256 MB to 2 GB, performance-1x 2 GB to 8 GB, each size
 * its multiple. A guest that names no memory gets the per-CPU minimum (Fly's preset).
 */
export const guestLimits: Record<
  CpuKind,
  { cpus: readonly number[]; memoryMbPerCpuMin: number; memoryMbPerCpuMax: number }
> = {
  shared: { cpus: [1, 2, 4, 8], memoryMbPerCpuMin: 256, memoryMbPerCpuMax: 2_048 },
  performance: { cpus: [1, 2, 4, 8, 16], memoryMbPerCpuMin: 2_048, memoryMbPerCpuMax: 8_192 },
};

/** Memory is given in steps of 256 MB, as on Fly. */
export const memoryMbStep = 256;
export const memoryMbMin = 256;
/** performance-16x with 8 GB per CPU. */
export const memoryMbMax = 16 * 8_192;

/** What a guest asks for, with Fly's defaults filled in. */
export interface Guest {
  cpuKind: CpuKind;
  cpus: number;
  memoryMb: number;
}

/**
 * The guest a config asks for, with Fly's defaults: one shared CPU, and the smallest memory of its
 * size (256 MB per shared CPU, 2 GB per performance CPU). For a config that passed the schema it
 * reads the values as they are. Capacity math runs on what it returns, also for configs stored
 * before the schema existed, so it never returns anything but Fly's sizes: a CPU count that is
 * not one of its kind's is 1, a memory that is not an integer is the size's default, and one out
 * of Fly's range is held to it (a negative `memory_mb` once let a 50 GB machine fit a 1 GB worker).
 */
export function guestOf(config: { guest?: unknown } | undefined): Guest {
  const guest = (config?.guest ?? {}) as {
    cpu_kind?: unknown;
    cpus?: unknown;
    memory_mb?: unknown;
  };
  const cpuKind: CpuKind = guest.cpu_kind === 'performance' ? 'performance' : 'shared';
  const limits = guestLimits[cpuKind];
  const cpus = limits.cpus.find((count) => count === guest.cpus) ?? 1;
  const memoryMb = Number.isInteger(guest.memory_mb)
    ? Math.min(memoryMbMax, Math.max(memoryMbMin, guest.memory_mb as number))
    : cpus * limits.memoryMbPerCpuMin;
  return { cpuKind, cpus, memoryMb };
}

/** `if` the guest is of this kind and size (an absent kind is shared, absent cpus is 1). */
function sizeIs(kind: CpuKind, cpus?: number): SchemaNode {
  const required = [
    ...(kind === 'performance' ? ['cpu_kind'] : []),
    ...(cpus && cpus > 1 ? ['cpus'] : []),
  ];
  return {
    properties: {
      cpu_kind: { type: 'string', const: kind },
      ...(cpus === undefined ? {} : { cpus: { type: 'integer', const: cpus } }),
    },
    required,
  };
}

/** JSON Schema's `if` / `then`: `then` applies to a guest that matches `if`. */
function ifThen(condition: SchemaNode, consequence: SchemaNode): SchemaNode {
  // biome-ignore lint/suspicious/noThenProperty: `then` is the JSON Schema keyword, not a thenable
  return { if: condition, then: consequence };
}

/** The memory range of each size: a shared-cpu-2x guest has 512 MB to 4 GB. */
function sizeRules(): SchemaNode[] {
  const rules: SchemaNode[] = [];
  for (const kind of cpuKinds) {
    const limits = guestLimits[kind];
    for (const cpus of limits.cpus) {
      const minimum = cpus * limits.memoryMbPerCpuMin;
      const maximum = cpus * limits.memoryMbPerCpuMax;
      const size = kind === 'shared' ? `shared-cpu-${cpus}x` : `performance-${cpus}x`;
      rules.push(
        ifThen(sizeIs(kind, cpus), {
          properties: {
            memory_mb: integer(minimum, maximum, {
              'x-rule': `an integer >= ${minimum} and <= ${maximum} for a ${size} guest`,
            }),
          },
        }),
      );
    }
  }
  const shared = guestLimits.shared.cpus;
  rules.push(
    ifThen(sizeIs('shared'), {
      properties: {
        cpus: {
          type: 'integer',
          enum: shared,
          'x-rule': `the integer ${shared.slice(0, -1).join(', ')} or ${shared.at(-1)} for shared CPUs (16 needs cpu_kind performance)`,
        },
      },
    }),
  );
  return rules;
}

/** Fly's `guest`: CPU kind and count, memory in MB. Unknown fields (gpus, kernel_args...) are kept. */
export const guestSchema: SchemaNode = {
  type: 'object',
  description:
    "The machine's size, as Fly's presets: cpus 1-8 shared (256 MB to 2 GB each) or 1-16 performance (2 GB to 8 GB each), memory in steps of 256 MB",
  properties: {
    cpu_kind: { type: 'string', enum: cpuKinds },
    cpus: { type: 'integer', enum: guestLimits.performance.cpus },
    memory_mb: integer(memoryMbMin, memoryMbMax, { multipleOf: memoryMbStep }),
  },
  allOf: sizeRules(),
};
