import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The broker the development server forwards API calls to (`npm run dev:admin`). */
const broker = process.env.BROKER_URL ?? 'http://127.0.0.1:3000';

/**
 * The admin UI: built by `npm run build` into `dist/admin`, which the broker serves at `/admin/`.
 * Vite transforms TSX itself (oxc), with React's automatic JSX runtime.
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
  },
  server: {
    proxy: { '/graphql': broker, '/api': broker },
  },
});
