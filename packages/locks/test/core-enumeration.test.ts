import assert from 'node:assert/strict';
import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { type CoreRequest, LockCore, type LockMode } from '../src/core.js';

interface Request extends CoreRequest {
  readonly id: number;
}
type Actor = { phase: 'idle' } | { phase: 'queued' | 'holding'; request: Request };
type Event = { actor: number; kind: 'read' | 'write' | 'release' | 'leave' };

/** A world: the core, each actor's phase, and how often each request id was answered. */
interface World {
  core: LockCore<Request>;
  actors: Actor[];
  /** answers[id]: how often request `id` was granted or rejected. */
  answers: number[];
  nextId: number;
}

/** A fresh world with the events applied: the core's queue is private, so worlds are replayed. */
function replay(events: Event[]): World {
  const world: World = {
    core: new LockCore<Request>(),
    actors: [{ phase: 'idle' }, { phase: 'idle' }, { phase: 'idle' }],
    answers: [],
    nextId: 1,
  };
  for (const event of events) apply(world, event);
  return world;
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

function answered(world: World, granted: readonly Request[]): void {
  for (const request of granted) {
    world.answers[request.id] = (world.answers[request.id] ?? 0) + 1;
    const actor = world.actors.findIndex(
      (candidate) => candidate.phase === 'queued' && candidate.request === request,
    );
    assert.notEqual(actor, -1, `granted ${request.id}, which nobody waits for`);
    world.actors[actor] = { phase: 'holding', request };
  }
}

function apply(world: World, event: Event): void {
  const actor = present(world.actors[event.actor], `actor ${event.actor}`);
  if (event.kind === 'read' || event.kind === 'write') {
    const request: Request = {
      id: world.nextId++,
      mode: event.kind as LockMode,
      queued: false,
      queuePrev: undefined,
      queueNext: undefined,
    };
    const now = world.core.request(request);
    world.actors[event.actor] = { phase: now ? 'holding' : 'queued', request };
    if (now) world.answers[request.id] = 1;
  } else if (event.kind === 'release' && actor.phase === 'holding') {
    world.actors[event.actor] = { phase: 'idle' };
    answered(world, world.core.release(actor.request));
  } else if (event.kind === 'leave' && actor.phase === 'queued') {
    const granted = world.core.leave(actor.request);
    assert.notEqual(granted, null, 'a queued waiter must still be in the queue');
    world.actors[event.actor] = { phase: 'idle' };
    world.answers[actor.request.id] = (world.answers[actor.request.id] ?? 0) + 1; // rejected
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
    world.core.readers + (world.core.writer === undefined ? 0 : 1),
    'holders disagree',
  );
  const queue = world.core.queue();
  assert.equal(queue.length, world.core.length, 'queue length disagrees');
  const queued = new Set(queue.map((waiter) => waiter.id));
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
    const walk = (events: Event[]) => {
      if (events.length === 8) {
        sequences++;
        return;
      }
      for (const event of possible(replay(events))) {
        const next = [...events, event];
        check(replay(next));
        walk(next);
      }
    };
    walk([]);
    expect(sequences).toBeGreaterThan(100_000);
  });

  it('grants the reader queued behind a writer that leaves (the seed 001 case)', () => {
    const core = new LockCore();
    const request = (mode: LockMode): CoreRequest => ({
      mode,
      queued: false,
      queuePrev: undefined,
      queueNext: undefined,
    });
    const [reader, writer, late] = [request('read'), request('write'), request('read')];
    expect(core.request(reader)).toBe(true);
    expect(core.request(writer)).toBe(false);
    expect(core.request(late)).toBe(false);
    expect(core.leave(writer)).toEqual([late]);
    expect(core.readers).toBe(2);
    core.check();
  });
});
