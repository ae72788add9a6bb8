/**
 * Inputs from a stream or a list: each is applied on its own, and a rejected
 * one is reported (`onError`) without stopping the others.
 */
import type { Observable, Subscription } from 'rxjs';
import type { Logger } from '../logger.js';

export type InputErrorHandler = (error: Error, input: unknown) => void;

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** Subscribe to `input$`, applying each input; rejections go to `onError` (default: logged). */
export function subscribeInputs<I>(input$: Observable<I>, apply: (input: I) => void, logger: Logger, onError?: InputErrorHandler): Subscription {
  const report = onError ?? ((error: Error) => logger.warn(`ingest: rejected input: ${error.message}`));
  return input$.subscribe({
    next: (raw) => {
      try {
        apply(raw);
      } catch (error) {
        report(asError(error), raw);
      }
    },
    error: (error: unknown) => logger.error('ingest: input stream failed', { error: String(error) }),
  });
}

/** Apply each of `inputs`; without `onError` the first rejection is thrown. */
export function applyEach<I>(inputs: readonly I[], apply: (input: I) => void, onError?: InputErrorHandler): void {
  for (const input of inputs) {
    if (onError === undefined) apply(input);
    else
      try {
        apply(input);
      } catch (error) {
        onError(asError(error), input);
      }
  }
}
