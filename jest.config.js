/** Jest runs unit tests beside the code (libs/**, apps/**) and integration tests in test/. */
const { readFileSync, readdirSync } = require('node:fs');
const swc = JSON.parse(readFileSync(`${__dirname}/.swcrc`, 'utf8'));
const aliases = Object.fromEntries(
  Object.entries(swc.jsc.paths).map(([alias, [target]]) => [`^${alias}$`, `<rootDir>/${target}`]),
);

// Node 20 loads ES-module-only packages through require(esm); jest's module registry cannot, so swc
// turns them into CommonJS. The list is read off node_modules: packages of "type": "module", plus
// mercurius, which loads quick-lru with import().
function esmOnlyPackages() {
  const root = `${__dirname}/node_modules`;
  const names = readdirSync(root).flatMap((d) =>
    d.startsWith('@') ? readdirSync(`${root}/${d}`).map((s) => `${d}/${s}`) : [d],
  );
  return names.filter((name) => {
    try {
      const pkg = JSON.parse(readFileSync(`${root}/${name}/package.json`, 'utf8'));
      return pkg.type === 'module';
    } catch {
      return false;
    }
  });
}
const ESM_ONLY = [...esmOnlyPackages(), 'mercurius'].map((n) => n.replace(/[.+]/g, '\\$&'));

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/apps/admin/'],
  moduleNameMapper: aliases,
  // NestJS 12 ships ES modules; swc turns them into CommonJS for jest's module registry.
  transform: {
    '^.+\\.(t|j)s$': ['@swc/jest', { ...swc, swcrc: false, jsc: { ...swc.jsc, baseUrl: __dirname } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_ONLY.join('|')})/)`],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
