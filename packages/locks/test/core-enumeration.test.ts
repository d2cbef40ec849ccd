import assert from 'node:assert/strict';
import { describe, expect, it } from 'vitest';
import { LockCore, type LockMode } from '../src/core.js';

type Actor = { phase: 'idle' } | { phase: 'queued' | 'holding'; id: number };
type Event = { actor: number; kind: 'read' | 'write' | 'release' | 'leave' };

/** A world: the core, each actor's phase, and how often each request id was answered. */
interface World {
  core: LockCore;
  actors: Actor[];
  /** answers[id]: how often request `id` was granted or rejected. */
  answers: number[];
  nextId: number;
}

function clone(world: World): World {
  const core = new LockCore();
  for (const reader of world.core.readers) core.readers.add(reader);
  core.writer = world.core.writer;
  core.queue.push(...world.core.queue.map((waiter) => ({ ...waiter })));
  return {
    core,
    actors: world.actors.map((actor) => ({ ...actor })),
    answers: [...world.answers],
    nextId: world.nextId,
  };
}

function possible(world: World): Event[] {
  return world.actors.flatMap((actor, index): Event[] => {
    if (actor.phase === 'idle')
      return [
        { actor: index, kind: 'read' },
        { actor: index, kind: 'write' },
      ];
    if (actor.phase === 'queued') return [{ actor: index, kind: 'leave' }];
    return [{ actor: index, kind: 'release' }];
  });
}

function answered(world: World, ids: number[]): void {
  for (const id of ids) {
    world.answers[id] = (world.answers[id] ?? 0) + 1;
    const actor = world.actors.findIndex(
      (candidate) => candidate.phase === 'queued' && candidate.id === id,
    );
    assert.notEqual(actor, -1, `granted ${id}, which nobody waits for`);
    world.actors[actor] = { phase: 'holding', id };
  }
}

function apply(world: World, event: Event): void {
  const actor = world.actors[event.actor]!;
  if (event.kind === 'read' || event.kind === 'write') {
    const id = world.nextId++;
    const now = world.core.request(id, event.kind as LockMode);
    world.actors[event.actor] = { phase: now ? 'holding' : 'queued', id };
    if (now) world.answers[id] = 1;
  } else if (event.kind === 'release' && actor.phase === 'holding') {
    world.actors[event.actor] = { phase: 'idle' };
    answered(world, world.core.release(actor.id));
  } else if (event.kind === 'leave' && actor.phase === 'queued') {
    const granted = world.core.leave(actor.id);
    assert.notEqual(granted, null, 'a queued waiter must still be in the queue');
    world.actors[event.actor] = { phase: 'idle' };
    world.answers[actor.id] = (world.answers[actor.id] ?? 0) + 1; // rejected
    answered(world, granted ?? []);
  }
}

/** Every invariant of the lock, after every event (plain asserts: this runs millions of times). */
function check(world: World): void {
  world.core.check();
  let holding = 0;
  for (const actor of world.actors) if (actor.phase === 'holding') holding++;
  assert.equal(
    holding,
    world.core.readers.size + (world.core.writer === null ? 0 : 1),
    'holders disagree',
  );
  const queued = new Set(world.core.queue.map((waiter) => waiter.id));
  for (let id = 1; id < world.nextId; id++) {
    assert.equal(
      world.answers[id] ?? 0,
      queued.has(id) ? 0 : 1,
      `request ${id} answered ${world.answers[id] ?? 0} times`,
    );
  }
}

// Every sequence of up to 8 events by 3 actors (request read or write, release, time out) keeps
// the invariants: never a writer with readers, at most one writer, no grantable waiter left
// waiting, every request granted or rejected exactly once.
describe('LockCore, exhaustively', () => {
  it('keeps every invariant over every event sequence of 3 actors and 8 events', () => {
    let sequences = 0;
    const walk = (world: World, depth: number) => {
      if (depth === 8) {
        sequences++;
        return;
      }
      for (const event of possible(world)) {
        const next = clone(world);
        apply(next, event);
        check(next);
        walk(next, depth + 1);
      }
    };
    walk(
      {
        core: new LockCore(),
        actors: [{ phase: 'idle' }, { phase: 'idle' }, { phase: 'idle' }],
        answers: [],
        nextId: 1,
      },
      0,
    );
    expect(sequences).toBeGreaterThan(100_000);
  });

  it('grants the reader queued behind a writer that leaves (the seed 001 case)', () => {
    const core = new LockCore();
    expect(core.request(1, 'read')).toBe(true);
    expect(core.request(2, 'write')).toBe(false);
    expect(core.request(3, 'read')).toBe(false);
    expect(core.leave(2)).toEqual([3]);
    core.check();
  });
});
