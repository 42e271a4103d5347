// Builds the web atlas into the Python package (modelatlas/viz/static), served by `modelatlas serve`.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: '../modelatlas/viz/static',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
});
