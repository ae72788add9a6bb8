/**
 * Time presence router callbacks as they are registered: the engine's
 * `registerPresenceRouter` is wrapped on the instance before the config's
 * modules load, so every module's callbacks report each call's wall time,
 * with the module's name.
 * The values the callbacks return are passed on untouched (the engine's
 * router validates them, including hostile thenables).
 */
import type { PresenceEngine, PresenceRouterCallbacks } from '../../src/index.js';

export type RouterCallbackName = keyof PresenceRouterCallbacks;

type Observe = (module: string, callback: RouterCallbackName, seconds: number) => void;

export function timeRouterRegistrations(engine: PresenceEngine, observe: Observe): void {
  const register = engine.registerPresenceRouter.bind(engine);
  engine.registerPresenceRouter = (moduleName, callbacks) =>
    register(moduleName, {
      getUsersForStates: timed(moduleName, 'getUsersForStates', callbacks.getUsersForStates, observe),
      getInterestedUsers: timed(moduleName, 'getInterestedUsers', callbacks.getInterestedUsers, observe),
    });
}

function timed<A extends unknown[], R>(module: string, name: RouterCallbackName, fn: (...args: A) => R, observe: Observe): (...args: A) => R {
  return (...args: A): R => {
    const t0 = performance.now();
    const done = (): void => observe(module, name, (performance.now() - t0) / 1000);
    let r: R;
    try {
      r = fn(...args);
    } catch (error) {
      done();
      throw error;
    }
    // Native promises are timed until they settle; the promise itself goes on unchanged.
    if (r instanceof Promise) r.then(done, done);
    else done();
    return r;
  };
}
