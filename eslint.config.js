// ESLint: typescript-eslint's recommended rules, and the rules that hold the architecture.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The folders of `src/` from the bottom up, and what each may import besides
 * `machines/` and itself. A lower layer never imports a higher one.
 */
const layers = {
  interpreter: [],
  wire: [],
  util: [],
  delivery: ['util'],
  connection: ['util', 'delivery', 'history', 'protocol', 'wire'],
  cluster: ['util'],
  observability: ['util'],
  history: ['util'],
  protocol: ['util', 'delivery', 'history', 'wire'],
  runtime: ['interpreter', 'util', 'delivery', 'connection', 'cluster', 'observability', 'history', 'protocol', 'wire'],
  client: ['interpreter', 'util', 'wire'],
  testing: [
    'interpreter',
    'wire',
    'util',
    'delivery',
    'connection',
    'cluster',
    'observability',
    'history',
    'protocol',
    'runtime',
    'client',
    'index.ts',
    'redis.ts',
  ],
};
const entryPoints = ['index.ts', 'redis.ts', 'nats.ts', 'client.ts'];
const everything = [...Object.keys(layers), ...entryPoints];

const layerZones = Object.entries(layers)
  .map(([layer, allowed]) => ({
    target: `./src/${layer}`,
    from: everything.filter((other) => other !== layer && !allowed.includes(other)).map((other) => `./src/${other}`),
    message: `src/${layer} may import only ${allowed.length > 0 ? allowed.map((name) => `src/${name}`).join(', ') + ' and ' : ''}machines/.`,
  }))
  .filter((zone) => zone.from.length > 0);

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'dist-bench/', '.readme-*/', 'demo/public/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      // Without a parser for .ts, imported files go unread and no cycle through them is seen.
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // `self` and `runtime` name the object whose getters and prom-client callbacks read it.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['self', 'runtime'] }],
      'import-x/no-cycle': 'error',
      'import-x/no-self-import': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            ...layerZones,
            { target: './src', from: './test', message: 'src/ never imports the tests.' },
            { target: './src', from: './bench', message: 'src/ never imports the benchmarks.' },
            { target: './src', from: './demo', message: 'src/ never imports the demo.' },
          ],
        },
      ],
    },
  },
  {
    // The transport alone speaks ws (and the testing side, which drives ws clients).
    files: ['src/**/*.ts'],
    ignores: ['src/connection/transport.ts', 'src/connection/transport/**', 'src/testing/**', 'src/client/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'ws',
              message: 'Only the transport (src/connection/transport.ts and transport/), the client and the testing side import ws.',
            },
          ],
        },
      ],
    },
  },
  {
    // What browsers run: berth/client and the codec it shares with the server use no Node globals.
    files: ['src/wire/**/*.ts', 'src/client/**/*.ts', 'src/client.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: 'berth/client runs in browsers: Uint8Array and TextEncoder/TextDecoder.' },
      ],
    },
  },
  {
    // Pure machines: xstate and their own types, nothing else (no ws, mitt, node:*, src/).
    files: ['machines/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!xstate$|\\./[\\w.-]+$)', message: 'machines/ imports only xstate and its own files.' }] },
      ],
    },
  },
  {
    // Plain JavaScript run by Node (configuration, the provisioning script).
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      // Tests reach into private corners of ws and xstate on purpose.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  prettier,
);
