/**
 * The rooms section of `/sync`: joined rooms with their membership state on
 * an initial sync, membership changes since a token (timeline), rooms joined
 * and left, long-polls woken by membership, and tokens from another run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, ALICE, BOB, CAROL, SHARED_ROOM, TOKENS, SYNC_TOKEN, clientPath, closeAll, http, startService, testConfig } from './helpers.js';

afterEach(closeAll);

interface Ev {
  type: string;
  state_key: string;
  sender: string;
  content: { membership?: string; creator?: string };
  event_id: string;
}
interface Room {
  timeline: { events: Ev[]; limited: boolean };
  state: { events: Ev[] };
  summary?: { 'm.heroes': string[]; 'm.joined_member_count': number };
}
interface Body {
  next_batch: string;
  rooms?: { join: Record<string, Room>; leave: Record<string, Room>; invite: Record<string, unknown> };
}

async function sync(url: string, user: string, query = ''): Promise<Body> {
  const r = await http(url, 'GET', clientPath(`/sync${query}`), { token: TOKENS[user] as string });
  expect(r.status, r.text).toBe(200);
  return r.body as Body;
}

const setMembership = (url: string, room: string, user: string, membership: string) =>
  http(url, 'PUT', `/_presence/admin/v1/rooms/${encodeURIComponent(room)}/members/${encodeURIComponent(user)}`, { token: ADMIN_TOKEN, json: { membership } });

const members = (events: Ev[]) =>
  events
    .filter((e) => e.type === 'm.room.member')
    .map((e) => `${e.state_key}:${e.content.membership ?? ''}`)
    .sort();

describe('/sync rooms', () => {
  it('initial sync: each joined room with m.room.create and its members’ m.room.member state', async () => {
    const { url } = await startService();
    const s = await sync(url, ALICE);
    expect(s.next_batch).toMatch(SYNC_TOKEN);
    expect(Object.keys(s.rooms?.join ?? {})).toEqual([SHARED_ROOM]);
    const room = s.rooms?.join[SHARED_ROOM] as Room;
    expect(room.timeline).toEqual({ events: [], limited: false });
    expect(room.state.events.find((e) => e.type === 'm.room.create')).toMatchObject({ state_key: '', content: { creator: '@presence:test.local' } });
    expect(members(room.state.events)).toEqual([`${ALICE}:join`, `${BOB}:join`]);
    expect(room.summary).toMatchObject({ 'm.heroes': [BOB], 'm.joined_member_count': 2 });
    // carol is in no room.
    expect((await sync(url, CAROL)).rooms).toEqual({ join: {}, leave: {}, invite: {} });
  });

  it('incremental: nothing at the current token; then a join and a leave in the timeline, a joined room with state, a left room', async () => {
    const { url } = await startService();
    const a0 = await sync(url, ALICE);
    const c0 = await sync(url, CAROL);
    expect((await sync(url, ALICE, `?since=${a0.next_batch}`)).rooms).toBeUndefined();

    expect((await setMembership(url, SHARED_ROOM, CAROL, 'join')).status).toBe(200);
    const a1 = await sync(url, ALICE, `?since=${a0.next_batch}`);
    const seen = a1.rooms?.join[SHARED_ROOM] as Room;
    expect(members(seen.timeline.events)).toEqual([`${CAROL}:join`]);
    expect(seen.state.events).toEqual([]);
    // carol joined: the room arrives with its state and her own join in the timeline.
    const c1 = await sync(url, CAROL, `?since=${c0.next_batch}`);
    const joined = c1.rooms?.join[SHARED_ROOM] as Room;
    expect(members(joined.timeline.events)).toEqual([`${CAROL}:join`]);
    expect(members(joined.state.events)).toEqual([`${ALICE}:join`, `${BOB}:join`]);

    expect((await setMembership(url, SHARED_ROOM, CAROL, 'leave')).status).toBe(200);
    const a2 = await sync(url, ALICE, `?since=${a1.next_batch}`);
    expect(members((a2.rooms?.join[SHARED_ROOM] as Room).timeline.events)).toEqual([`${CAROL}:leave`]);
    const c2 = await sync(url, CAROL, `?since=${c1.next_batch}`);
    expect(c2.rooms?.join).toEqual({});
    expect(members((c2.rooms?.leave[SHARED_ROOM] as Room).timeline.events)).toEqual([`${CAROL}:leave`]);
    // Event ids are unique.
    const ids = [...(a1.rooms?.join[SHARED_ROOM] as Room).timeline.events, ...(a2.rooms?.join[SHARED_ROOM] as Room).timeline.events].map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each(['per_input', 'per_tick'])('a membership change wakes a long-poll of a member of the room, not of others (turns: %s)', async (turns) => {
    const { url } = await startService(testConfig({ top: { presence: { enabled: true, turns } } }));
    const a0 = await sync(url, ALICE);
    const c0 = await sync(url, CAROL);
    const started = Date.now();
    const alicePoll = http(url, 'GET', clientPath(`/sync?since=${a0.next_batch}&timeout=10000`), { token: TOKENS[ALICE] as string });
    const carolPoll = http(url, 'GET', clientPath(`/sync?since=${c0.next_batch}&timeout=600`), { token: TOKENS[CAROL] as string });
    await new Promise((r) => setTimeout(r, 100));
    await setMembership(url, SHARED_ROOM, '@dave:remote.test', 'join');
    const a1 = (await alicePoll).body as Body;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(members((a1.rooms?.join[SHARED_ROOM] as Room).timeline.events)).toEqual(['@dave:remote.test:join']);
    const c1 = (await carolPoll).body as Body;
    expect(c1.rooms).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
  });

  it('a token from another run (or a legacy p<n> token) gets the rooms in full, marked limited', async () => {
    const { url } = await startService();
    const a0 = await sync(url, ALICE);
    const otherRun = a0.next_batch.replace(/_[0-9a-f]+$/, '_0badc0ffee');
    for (const token of [otherRun, a0.next_batch.replace(/_m.*$/, '')]) {
      const s = await sync(url, ALICE, `?since=${token}`);
      const room = s.rooms?.join[SHARED_ROOM] as Room;
      expect(room.timeline.limited).toBe(true);
      expect(members(room.state.events)).toEqual([`${ALICE}:join`, `${BOB}:join`]);
      expect(s.next_batch).toMatch(SYNC_TOKEN);
    }
    // full_state=true: the rooms in full at any token.
    const full = await sync(url, ALICE, `?since=${a0.next_batch}&full_state=true`);
    expect(members((full.rooms?.join[SHARED_ROOM] as Room).state.events)).toEqual([`${ALICE}:join`, `${BOB}:join`]);
  });
});
