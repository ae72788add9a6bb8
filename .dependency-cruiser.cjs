/**
 * The layers of docs/architecture.md, checked by `npm run lint`:
 *
 *   domain (pure) ← machines, streams ← router, federation, log ← engine parts
 *   (src/engine/) ← engine facade (src/engine.ts) ← hosting (src/hosting/,
 *   src/appservice/, src/testing/, src/index.ts) ← service/
 *
 * The support modules (errors, clock, logger, config, inputs, rate limit,
 * timer wheel, Redis URLs) sit just above the domain. Nothing imports upward, and nothing
 * imports in a circle.
 */
const DOMAIN = '^src/domain/';
const ERRORS = '^src/errors\\.ts$';
const SUPPORT = '^src/(clock|logger|config|inputs|rate-limit|timer-wheel|redis-url)\\.ts$';
const MACHINES = '^machines/';
const STREAMS = '^streams/';
const ADAPTERS = '^src/(router|federation|log)/';
const PARTS = '^src/engine/';
const FACADE = '^src/engine\\.ts$';
const HOSTING = '^src/(hosting/|appservice/|testing/|index\\.ts$|rules\\.ts$|demo\\.ts$)';
const SERVICE = '^service/';

const above = (...layers) => ({ path: layers });

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'Import circles make layers meaningless.', from: {}, to: { circular: true } },
    {
      name: 'errors-import-nothing',
      severity: 'error',
      comment: 'src/errors.ts is the bottom of the tree.',
      from: { path: ERRORS },
      to: { dependencyTypes: ['local', 'npm', 'core'] },
    },
    {
      name: 'domain-is-pure',
      severity: 'error',
      comment: 'The domain imports only itself, errors, zod and immer: no I/O, no streams, no machines.',
      from: { path: DOMAIN },
      to: { pathNot: [DOMAIN, ERRORS, '^node_modules/(zod|immer)/'] },
    },
    {
      name: 'support-below-machines',
      severity: 'error',
      from: { path: SUPPORT },
      to: above(MACHINES, STREAMS, ADAPTERS, PARTS, FACADE, HOSTING, SERVICE),
    },
    {
      name: 'machines-streams-below-adapters',
      severity: 'error',
      comment: 'machines/ and streams/ import the domain and the support modules only.',
      from: { path: [MACHINES, STREAMS] },
      to: above(ADAPTERS, PARTS, FACADE, HOSTING, SERVICE),
    },
    {
      name: 'adapters-below-engine',
      severity: 'error',
      comment: 'Routers, federation and logs depend on narrow host interfaces, never on the engine.',
      from: { path: ADAPTERS },
      to: above(PARTS, FACADE, HOSTING, SERVICE),
    },
    {
      name: 'parts-below-facade',
      severity: 'error',
      comment: 'Engine parts are wired by the facade; they never import it.',
      from: { path: PARTS },
      to: above(FACADE, HOSTING, SERVICE),
    },
    { name: 'facade-below-hosting', severity: 'error', from: { path: FACADE }, to: above(HOSTING, SERVICE) },
    { name: 'library-below-service', severity: 'error', comment: 'The package never imports the reference service.', from: { path: '^(src|machines|streams)/' }, to: above(SERVICE) },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
