import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', '.tools/**', '.gate/**', 'coverage/**', '.scratch/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-console': 'off',
    },
  },
  {
    // Front ends (the CLI and the HTTP server) are thin adapters over the gate: they import the
    // gate, the config loader, the shared types and utilities, and the public API (src/index.ts)
    // for the verifier, the ledger and the policies, never a stage's inner modules. src/api/ holds
    // the parts src/index.ts re-exports whole (the verifier, the ledger, break glass, policies):
    // a command that needs one part imports it alone, to start without loading the rest.
    files: ['src/cli/**/*.ts', 'src/server/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/audit/*', '**/breakglass/*', '**/collect/*', '**/evaluate/*'],
              message: 'front ends import the gate or src/index.ts, not a stage',
            },
            {
              group: ['**/notify/*', '**/verify/*'],
              message: 'front ends import the gate or src/index.ts, not a stage',
            },
          ],
        },
      ],
    },
  },
  {
    // Negative fixtures edit parsed JSON freely.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
