/**
 * Replay on its own: `restoreState` into fresh parts (directory, room index,
 * change index, actor system) from a log written by a live engine gives the
 * live engine's snapshot back through `takeSnapshot`; a snapshot restores to
 * itself; the log after a snapshot is folded on top; unknown versions are
 * refused.
 */
import { describe, expect, it } from 'vitest';
import { PresenceActorSystem } from '../../../machines/actor-system.js';
import type { LogEntry } from '../../../src/domain/events.js';
import type { RoomId, UserId } from '../../../src/domain/ids.js';
import type { UserRecord } from '../../../src/domain/presence.js';
import type { EngineSnapshot } from '../../../src/domain/snapshot.js';
import { restoreState, takeSnapshot, type ReplayState } from '../../../src/engine/replay.js';
import { RoomIndex } from '../../../src/engine/room-index.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import type { PresenceEngine } from '../../../src/index.js';
import { InvalidInputError } from '../../../src/errors.js';
import { createTestEngine } from '../../../src/testing/index.js';
import { ChangeIndex } from '../../../streams/change-index.js';

function freshState(engine: PresenceEngine) {
  const users = new UserDirectory(engine.config.serverName);
  const armed: [number, UserId, UserRecord][] = [];
  const state: ReplayState = {
    users,
    rooms: new RoomIndex(users, new Set()),
    changes: new ChangeIndex(1_000, 0),
    actors: new PresenceActorSystem({ timers: engine.config.timers, syncCountsAsActivity: engine.config.syncCountsAsActivity }),
    fullRequests: new Map(),
    arm: (user, userId, record) => void armed.push([user, userId, record]),
  };
  return { state, armed };
}

/** A live engine with presence changes, joins, leaves, a remote user and a full-presence request. */
function liveEngine() {
  const { engine, clock } = createTestEngine({ serverName: 'example.org' });
  engine.joinRoom('!r:example.org', '@a:example.org');
  engine.joinRoom('!r:example.org', '@b:example.org');
  engine.joinRoom('!s:example.org', '@a:example.org');
  engine.setPresence('@a:example.org', { presence: 'online', statusMsg: 'hello' });
  clock.advance(60_000);
  const sync = engine.userSyncing('@b:example.org');
  engine.setPresence('@c:example.org', { presence: 'unavailable' });
  engine.leaveRoom('!s:example.org', '@a:example.org');
  engine.joinRoom('!s:example.org', '@c:example.org');
  clock.advance(10_000);
  sync.end();
  engine.sendLocalOnlinePresenceTo(['@b:example.org']);
  return { engine, clock };
}

describe('replay', () => {
  it('folding a live engine’s log into fresh parts gives the live engine’s snapshot', () => {
    const { engine } = liveEngine();
    const live = engine.snapshot();
    const { state, armed } = freshState(engine);
    const entries: LogEntry[] = [...engine.log.read()];
    const streamId = restoreState(state, undefined, entries);
    expect(streamId).toBe(engine.currentToken);
    expect(takeSnapshot(state, engine.log.position, streamId)).toEqual(live);
    expect(state.rooms.isJoined('!s:example.org' as RoomId, '@a:example.org' as UserId)).toBe(false);
    expect(state.rooms.isJoined('!s:example.org' as RoomId, '@c:example.org' as UserId)).toBe(true);
    expect(state.fullRequests.has('@b:example.org' as UserId)).toBe(true);
    expect(armed.map(([, id]) => id).sort()).toEqual(live.users.map(([id]) => id).sort());
    // the change index was rebuilt: every notified change and join is listed after token 0
    let count = 0;
    expect(state.changes.forEachSince(0, () => count++)).toBe(true);
    expect(count).toBeGreaterThan(0);
    expect(state.users.storedPresence('@a:example.org' as UserId)?.statusMsg).toBe('hello');
  });

  it('a snapshot restores to itself, and log entries after it fold on top', () => {
    const { engine, clock } = liveEngine();
    const snap = engine.snapshot();
    const position = engine.log.position;
    engine.setPresence('@d:example.org', { presence: 'online' });
    engine.leaveRoom('!r:example.org', '@b:example.org');
    clock.advance(1_000);
    const alone = freshState(engine);
    const sid = restoreState(alone.state, snap, []);
    expect(sid).toBe(snap.streamId);
    expect(takeSnapshot(alone.state, snap.position, sid)).toEqual(snap);
    const after = freshState(engine);
    const sid2 = restoreState(after.state, snap, engine.log.read(position));
    expect(takeSnapshot(after.state, engine.log.position, sid2)).toEqual(engine.snapshot());
  });

  it('refuses a snapshot of an unknown version, naming the snapshot', () => {
    const { engine } = liveEngine();
    const snap = { ...engine.snapshot(), version: 2 } as unknown as EngineSnapshot;
    const { state } = freshState(engine);
    expect(() => restoreState(state, snap, [])).toThrow(InvalidInputError);
    expect(() => restoreState(freshState(engine).state, snap, [])).toThrow(/unsupported snapshot version 2/);
  });
});
