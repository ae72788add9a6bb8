/**
 * Embedding example: a service drives the engine with an RxJS stream of input
 * events and consumes a user's sync stream through a slow (asynchronous)
 * handler. Run with `npx tsx examples/embedding.ts`.
 */
import { Subject } from 'rxjs';
import {
  PresenceEngine,
  coalesceWhileBusy,
  formatPresenceEvent,
  presenceConfig,
  silentLogger,
  type PresenceInputEvent,
} from '../src/index.js';
import { SimulatedClock } from '../src/testing/index.js';

const clock = new SimulatedClock();
const engine = new PresenceEngine({
  config: presenceConfig('example.org', { rc_presence: { per_user: { per_second: 100, burst_count: 100 } } }),
  clock,
  logger: silentLogger,
});

// 1. The service's event bus: everything the engine needs arrives as events.
const input$ = new Subject<PresenceInputEvent>();
engine.ingest(input$, (error, input) => console.log(`rejected ${JSON.stringify(input)}: ${error.message}`));

// 2. A slow consumer: each batch takes a while to "send"; batches that arrive
//    meanwhile are merged per user (latest wins) instead of piling up.
const sent: string[] = [];
engine
  .syncStream('@bob:example.org')
  .pipe(
    coalesceWhileBusy(async (batch) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const line = batch.events.map((s) => {
        const e = formatPresenceEvent(s, clock.now());
        return `${e.sender}=${e.content.presence}`;
      });
      sent.push(`token ${batch.token}: ${line.join(', ')}`);
      return batch.token;
    }),
  )
  .subscribe();

// 3. Drive it.
for (const user of ['@alice:example.org', '@bob:example.org', '@carol:example.org']) {
  input$.next({ type: 'room.membership', roomId: '!team:example.org', userId: user, membership: 'join' });
}
input$.next({ type: 'presence.set', userId: '@alice:example.org', presence: 'online', statusMsg: 'hi' });
input$.next({ type: 'sync.start', userId: '@carol:example.org', syncId: 's1', setPresence: 'unavailable' });
input$.next({ type: 'presence.set', userId: '@alice:example.org', presence: 'unavailable' });
input$.next({ type: 'sync.end', userId: '@carol:example.org', syncId: 's1' });
input$.next({ type: 'presence.set', userId: '@alice:example.org', presence: 'sleeping' } as unknown as PresenceInputEvent);

await new Promise((resolve) => setTimeout(resolve, 100));
console.log(sent.join('\n'));
const pulled = await engine.getNewEvents('@bob:example.org');
console.log(`bob's initial sync: ${pulled.events.map((s) => `${s.userId}=${s.state}`).join(', ')} (token ${pulled.nextToken})`);
engine.stop();
