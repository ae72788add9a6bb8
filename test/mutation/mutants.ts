/**
 * Known bugs planted one at a time by `run-mutants.ts` to show that the model
 * and property tests bite. Each mutant replaces an exact text in one source
 * file (every occurrence when `all` is set); if the text is not found the
 * mutant is reported as "does not apply" (the source moved on: update it).
 */
export interface Edit {
  readonly file: string;
  readonly find: string;
  readonly replace: string;
  readonly all?: boolean;
}

export interface Mutant extends Edit {
  readonly id: string;
  readonly description: string;
  /** Further edits planted together with the first one. */
  readonly more?: readonly Edit[];
}

export const MUTANTS: readonly Mutant[] = [
  {
    id: 'no-dedup',
    description: 'sync notifier drops deduplication: a user changed (or seen through several rooms) appears several times in one batch',
    file: 'streams/sync-notifier.ts',
    find: 'if (seen[i] === mark || inSegment[i] === inLargest) continue;\n        seen[i] = mark;\n        if (extras === extra.length) extra = growExtra();\n        extra[extras++] = i;\n      }\n    }\n    for',
    replace: 'seen[i] = mark;\n        if (extras === extra.length) extra = growExtra();\n        extra[extras++] = i;\n      }\n    }\n    for',
  },
  {
    id: 'merge-drops-single-extra',
    description: 'a listener with several sources gets only the largest room\'s batch when the others add exactly one user',
    file: 'streams/sync-notifier.ts',
    find: 'if (extras === 0) return shared;',
    replace: 'if (extras < 2) return shared;',
  },
  {
    id: 'merge-scratch-grows-empty',
    description: 'the merge scratch forgets the users collected so far when it grows past its size (only batches adding over 1024 users)',
    file: 'streams/sync-notifier.ts',
    find: '  grown.set(extraAt);\n  return (extraAt = grown);',
    replace: '  return (extraAt = grown);',
  },
  {
    id: 'merge-remembers-old-turn',
    description: 'a merge trusts the marks of the room it marked last even when that room\'s segment has been cleared and refilled in a later turn (same size)',
    file: 'streams/sync-notifier.ts',
    find: '    if (markedSegment === this) markedSegment = null;',
    replace: '',
  },
  {
    id: 'second-subscriber-starved',
    description: 'a notifier keeps emitting to its first subscriber only once a second one subscribes to the same stream',
    file: 'streams/sync-notifier.ts',
    find: '    this.subscribers.push(s);\n    this.sole = this.subscribers.length === 1 ? s : null;',
    replace: '    this.subscribers.push(s);\n    if (this.subscribers.length === 1) this.sole = s;',
  },
  {
    id: 'listeners-cache-stale',
    description: 'a room keeps its cached array of listeners when a member opens a stream or a listener joins (the new listener is never woken through the room)',
    file: 'streams/push-fanout.ts',
    find: '    rl.listening.add(user);\n    rl.listeners = null;',
    replace: '    rl.listening.add(user);',
  },
  {
    id: 'shortcut-skips-state-changes',
    description: 'the compiled path keeps the old leaf when an activity bump changes the presence state (the machine never moves)',
    file: 'machines/actor-system.ts',
    find: 'if (leaf !== actor.leaf) {',
    replace: "if (leaf !== actor.leaf && event.type !== 'activity') {",
  },
  {
    id: 'router-ignores-all-users',
    description: 'the combined router ignores a module\'s ALL_USERS answer (treated as no interest)',
    file: 'src/router/presence-router.ts',
    find: 'if (r.data === ALL_USERS) return true;',
    replace: 'if (r.data === ALL_USERS) return false;',
  },
  {
    id: 'push-skips-all-users',
    description: 'routed states are not pushed to ALL_USERS listeners',
    file: 'src/engine/delivery.ts',
    find: 'if (n !== undefined && n.interest === ALL_USERS) for (const s of states)',
    replace: 'if (n !== undefined && n.interest !== ALL_USERS) for (const s of states)',
  },
  {
    id: 'all-users-gets-own-changes',
    description: 'an ALL_USERS listener is also pushed their own changes, bypassing the router',
    file: 'streams/push-fanout.ts',
    find: 'if (own !== undefined && own.interest !== ALL) this.offer(own, u);',
    replace: 'if (own !== undefined) this.offer(own, u);',
  },
  {
    id: 'no-idle-timer',
    description: 'rules skip the idle timer (online devices never become unavailable)',
    file: 'src/domain/rules.ts',
    find: "if (d.state === 'online' && now - d.lastActiveTs > t.idleTimeout) {",
    replace: "if (false && d.state === 'online' && now - d.lastActiveTs > t.idleTimeout) {",
    // and its deadline, so the timer wheel does not spin on a deadline that changes nothing
    more: [
      {
        file: 'src/domain/rules.ts',
        find: "if (d.state === 'online') due = Math.min(due, d.lastActiveTs + t.idleTimeout + 1);",
        replace: '',
      },
    ],
  },
  {
    id: 'input-overtakes-queued-timeout',
    description: "an input does not run the user's re-examination still queued from a timer tick first (it runs later, out of order)",
    file: 'src/engine/presence-steps.ts',
    find: 'if (event.type !== \'timeout\' && this.slices.isQueued(idx)) this.slices.runQueued(idx);',
    replace: '',
  },
  {
    id: 'leave-keeps-room',
    description: 'the engine forgets to drop the room from the user\'s rooms on leave',
    file: 'src/engine/room-index.ts',
    find: 'if (at >= 0) rooms?.splice(at, 1);',
    replace: '/* room kept */',
  },
  {
    id: 'busy-uses-sync-timeout',
    description: 'busy devices time out after the sync timeout instead of the busy timeout',
    file: 'src/domain/rules.ts',
    find: "const limit = d.state === 'busy' ? t.busyTimeout : t.syncOnlineTimeout;",
    replace: 'const limit = t.syncOnlineTimeout;',
    all: true,
  },
  {
    id: 'sync-overrides-busy',
    description: 'a sync resets a busy user to online',
    file: 'src/domain/rules.ts',
    find: "if (input.isSync && prev.state === 'busy') presence = 'busy';",
    replace: '',
  },
  {
    id: 'bump-keeps-unavailable',
    description: 'activity does not bring an unavailable device back online',
    file: 'src/domain/rules.ts',
    find: "state: old.state === 'unavailable' ? 'online' : old.state,",
    replace: 'state: old.state,',
  },
  {
    id: 'status-change-not-notified',
    description: 'should_notify ignores status message changes',
    file: 'src/domain/rules.ts',
    find: 'if (old.statusMsg !== c.statusMsg) return true;',
    replace: '',
  },
  {
    id: 'currently-active-inclusive',
    description: 'currently_active uses <= granularity instead of the strict <',
    file: 'src/domain/rules.ts',
    find: 'currentlyActive = now - c.lastActiveTs < cfg.timers.lastActiveGranularity;',
    replace: 'currentlyActive = now - c.lastActiveTs <= cfg.timers.lastActiveGranularity;',
  },
  {
    id: 'remote-never-expires',
    description: 'remote users never expire (federation timeout ignored)',
    file: 'src/domain/rules.ts',
    find: 'if (now - p.lastFederationUpdateTs > cfg.timers.federationTimeout) {',
    replace: 'if (false) {',
    // and its deadline, so the timer wheel does not spin on a deadline that changes nothing
    more: [
      {
        file: 'src/domain/rules.ts',
        find: "if (!isMine) return p.state === 'offline' ? Infinity : p.lastFederationUpdateTs + t.federationTimeout + 1;",
        replace: 'if (!isMine) return Infinity;',
      },
    ],
  },
  {
    id: 'no-join-push',
    description: 'joins are not pushed (neither the joiner to the room nor the room to the joiner)',
    file: 'src/engine.ts',
    find: 'if (joins.length > 0) this.delivery.joins(joins);',
    replace: '',
  },
  {
    id: 'excluded-rooms-shared',
    description: 'rooms excluded from presence still count as shared for pulls',
    file: 'src/engine/room-index.ts',
    find: 'if (!room.excluded && room.members.has(other)) return true;',
    replace: 'if (room.members.has(other)) return true;',
  },
  {
    id: 'full-request-forgotten',
    description: 'sendLocalOnlinePresenceTo does not record the full-presence request for later reads',
    file: 'src/engine.ts',
    find: 'for (const u of userIds) this.fullRequests.set(u, streamId - 1);',
    replace: '',
  },
  {
    id: 'replay-loses-change-index',
    description: 'replaying the log does not rebuild the change index (incremental reads after a restart miss changes)',
    file: 'src/engine/replay.ts',
    find: 'state.changes.add(e.streamId, i);',
    replace: '',
  },
  {
    id: 'edu-accepts-negative-ago',
    description: 'inbound EDU validation accepts a negative or fractional last_active_ago',
    file: 'src/federation/edu.ts',
    find: 'last_active_ago: z.number().int().nonnegative().nullish(),',
    replace: 'last_active_ago: z.number().nullish(),',
  },
  {
    id: 'memory-log-keeps-one-more',
    description: 'the in-memory log keeps one entry more than `retain` (memory not bounded as documented)',
    file: 'src/log/event-log.ts',
    find: 'const keepFrom = entries.length - this.retain;',
    replace: 'const keepFrom = entries.length - this.retain - 1;',
  },
  {
    id: 'memory-log-compaction-shifts',
    description: 'compacting the in-memory log forgets to move its base: positions read after a compaction are off',
    file: 'src/log/event-log.ts',
    find: '      this.base += this.dropped;\n',
    replace: '',
  },
  {
    id: 'remote-leave-not-counted',
    description: "a remote member's leave does not lower the room's count for their server (the server stays a destination of the room)",
    file: 'src/engine/room-index.ts',
    find: 'const c = (room.remote.get(server) ?? 0) + delta;',
    replace: 'const c = (room.remote.get(server) ?? 0) + Math.max(delta, 0);',
  },
  {
    id: 'long-room-list-drops-joins',
    description: 'a user already in 32 rooms (past the exactly sized lists) does not get further rooms added to their list',
    file: 'src/engine/room-index.ts',
    find: '    else rooms.push(room);\n  }\n\n  private countRemote',
    replace: '    else void room;\n  }\n\n  private countRemote',
  },
  {
    id: 'snapshot-room-lists-cut-short',
    description: "start-up from a snapshot sizes each user's list of rooms one short (the last room loaded is forgotten)",
    file: 'src/engine/room-index.ts',
    find: 'roomsAt[u] = rooms.slice();',
    replace: 'roomsAt[u] = rooms.slice(0, -1);',
  },
  {
    id: 'memory-log-reads-dropped-slot',
    description: 'a reader of the in-memory log reads on past an entry dropped under it (returns a cleared slot instead of a LogError)',
    file: 'src/log/event-log.ts',
    find: 'if (p <= log.firstReadable) throw',
    replace: 'if (p < 0) throw',
  },
  {
    id: 'step-shares-devices-despite-removal',
    description: "a logged step carries the record's device map even when a device was removed (the removal is never logged: replay keeps the device)",
    file: 'src/domain/evolve.ts',
    find: 'if (!removed) {',
    replace: 'if (removed || !removed) {',
  },
  {
    id: 'notified-change-keeps-federation-ts',
    description: 'a notified change no longer sets last_federation_update_ts to now (federation pings then go out early)',
    file: 'src/domain/rules.ts',
    find: 'if (notify) lastFed = now;',
    replace: '',
  },
  {
    id: 'per-tick-snapshot-skips-commit',
    description: 'with per-tick turns, snapshot() does not commit the open tick: its records hold inputs its position does not cover (replayed twice on restore)',
    file: 'src/engine.ts',
    find: '    this.turns.closeTick();\n    return takeSnapshot(',
    replace: '    return takeSnapshot(',
  },
  {
    id: 'per-tick-inputs-queue-behind-tick',
    description: 'with per-tick turns, later inputs of a tick wait in the mailbox instead of joining its turn (each commits alone, re-stamped)',
    file: 'src/engine/turns.ts',
    find: 'if (state === \'batch\' || state === \'tick\') return this.stepSafely(userId, event);',
    replace: 'if (state === \'batch\') return this.stepSafely(userId, event);\n    if (state === \'tick\') {\n      this.mailbox.push(() => this.host.step(userId, { ...event, now: this.host.now() }));\n      return;\n    }',
  },
  // ─── visibility policies (docs/policies.md) ───
  {
    id: 'policy-push-unmasked',
    description: 'sync streams are pushed the truth of a user whose policy hides it from the viewer',
    file: 'src/engine/delivery.ts',
    find: 'v !== undefined && v.active ? v.viewBatch : null',
    replace: 'null',
  },
  {
    id: 'policy-pull-unmasked',
    description: 'getNewEvents answers the truth of a user whose policy hides it from the reader',
    file: 'src/engine/sync-reader.ts',
    find: 'return { events: visibility.viewList(id, events, full && !includesOffline), nextToken, full };',
    replace: 'return { events, nextToken, full };',
  },
  {
    id: 'policy-initial-keeps-masked',
    description: 'an initial sync without offline users still lists users masked to offline (their policy shows as an offline entry)',
    file: 'src/engine/sync-reader.ts',
    find: 'visibility.viewList(id, events, full && !includesOffline)',
    replace: 'visibility.viewList(id, events, false)',
  },
  {
    id: 'policy-get-presence-unmasked',
    description: 'GET /presence answers the truth of a user whose policy hides it from the requester',
    file: 'src/engine.ts',
    find: 'const seen = this.visibility.active ? this.visibility.view(requester, truth) : truth;',
    replace: 'const seen = truth;',
  },
  {
    id: 'policy-federation-unmasked',
    description: 'federation sends local changes unmasked to servers a policy hides the user from',
    file: 'src/engine/federation-routing.ts',
    find: 'for (const server of servers) this.outbound.enqueue([server], states.map((st) => v.forServer(server, st)));',
    replace: 'this.outbound.enqueue(servers, states);',
  },
  {
    id: 'policy-online-to-unmasked',
    description: 'send_local_online_presence_to sends remote servers the truth of users a policy hides from them',
    file: 'src/engine/federation-routing.ts',
    find: 'if (v !== undefined && v.active) s = v.forServer(server, s);',
    replace: '',
  },
  {
    id: 'policy-denied-user-spares-server',
    description: 'denying a remote user no longer hides the truth from their server (which re-shares it with that user)',
    file: 'src/domain/policy.ts',
    find: 'this.denyServers.has(server) || this.denyUserServers.has(server)',
    replace: 'this.denyServers.has(server)',
  },
  {
    id: 'policy-allow-ignores-servers',
    description: 'an allow list ignores its servers: users of an allowed server see the masked state',
    file: 'src/domain/policy.ts',
    find: ' && !(this.allowServers as ReadonlySet<string>).has(server)) return true;',
    replace: ') return true;',
  },
  {
    id: 'policy-invisible-to-self',
    description: "an invisible user's own devices see the masked state instead of the truth",
    file: 'src/domain/policy.ts',
    find: '    if (viewer === this.userId) return false;\n',
    replace: '',
  },
  {
    id: 'policy-change-not-indexed',
    description: 'a policy change takes a stream id but does not enter the change index: readers from an earlier token never re-read the user',
    file: 'src/engine/policies.ts',
    find: '    this.changes.add(streamId, idx);\n    return streamId;',
    replace: '    return streamId;',
  },
  {
    id: 'policy-change-not-pushed',
    description: "a policy change does not wake the user's listeners: streams keep showing what the old policy allowed",
    file: 'src/engine/policies.ts',
    find: '    this.turn.notified(idx, lastStreamId[idx] ?? 0);\n',
    replace: '',
  },
  {
    id: 'policy-not-replayed',
    description: 'replay skips user.policy events: a restarted engine shows hidden users to everyone',
    file: 'src/engine/replay.ts',
    find: '      state.visibility?.set(e.userId, e.policy);\n',
    replace: '',
  },
  {
    id: 'policy-not-snapshotted',
    description: 'snapshots leave the policies out: an engine restored from a snapshot forgets them',
    file: 'src/engine/replay.ts',
    find: "...(policies.length > 0 ? { policies } : {})",
    replace: '',
  },
];
