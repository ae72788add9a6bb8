/**
 * A federation transport decorator that times each outbound transaction
 * (`presence_federation_send_duration_seconds`), whatever the transport.
 */
import type { FederationTransport, PresenceEdu, ServerName } from '../../src/index.js';

export function timeFederationSends(inner: FederationTransport, observe: (seconds: number, result: 'ok' | 'error') => void): FederationTransport {
  return {
    async send(destination: ServerName, edus: readonly PresenceEdu[]): Promise<void> {
      const t0 = performance.now();
      try {
        await inner.send(destination, edus);
        observe((performance.now() - t0) / 1000, 'ok');
      } catch (error) {
        observe((performance.now() - t0) / 1000, 'error');
        throw error;
      }
    },
  };
}
