import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The broker the development server forwards API calls to (`npm run dev:admin`). */
const broker = process.env.BROKER_URL ?? 'http://127.0.0.1:3000';

/**
 * The admin UI: built by `npm run build` into `dist/admin`, which the broker serves at `/admin/`.
 * A second page, `graphiql.html`, is GraphiQL bundled from npm: the broker serves it to a browser
 * that opens `/graphql` or `/data/graphql`. Vite transforms TSX itself (oxc), with React's automatic
 * JSX runtime.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/admin/',
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: fileURLToPath(new URL('../../dist/admin', import.meta.url)),
    emptyOutDir: true,
    // The broker's content security policy allows no inline script or style, so nothing is inlined.
    assetsInlineLimit: 0,
    // GraphiQL (its editor, its React components and graphql-js) is one chunk of ~800 kB, loaded
    // only by its own page.
    chunkSizeWarningLimit: 1000,
    rolldownOptions: {
      // GraphiQL's dependencies mark React server-component boundaries ("use client"), which mean
      // nothing in a browser bundle.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
      input: {
        admin: fileURLToPath(new URL('index.html', import.meta.url)),
        graphiql: fileURLToPath(new URL('graphiql.html', import.meta.url)),
      },
    },
  },
  server: {
    proxy: { '/graphql': broker, '/api': broker },
  },
});
