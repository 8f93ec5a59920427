import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/util/paths.js';

/**
 * The CLI and the server are thin adapters: they import the gate, the config loader, the shared
 * types and src/index.ts, never a stage's inner modules. The eslint zone says so; this keeps it
 * in `make test`, and shows the zone would catch a front end reaching into a stage.
 */
const eslint = new ESLint({ cwd: packageRoot });

describe('the front-end import zone', () => {
  it('holds for every file of the CLI and the server', async () => {
    const results = await eslint.lintFiles(['src/cli/**/*.ts', 'src/server/**/*.ts']);
    const broken = results.flatMap((r) =>
      r.messages
        .filter((m) => m.ruleId === 'no-restricted-imports')
        .map((m) => `${r.filePath}:${m.line} ${m.message}`),
    );
    expect(broken).toEqual([]);
    expect(results.length).toBeGreaterThan(20);
  }, 60_000);

  it('refuses a front end that imports a stage', async () => {
    for (const [file, from] of [
      ['src/server/example.ts', '../verify/verifier.js'],
      ['src/cli/commands/example.ts', '../../audit/sqlite.js'],
    ] as const) {
      const [result] = await eslint.lintText(
        `import { x } from '${from}';\nexport const y = x;\n`,
        {
          filePath: `${packageRoot}/${file}`,
        },
      );
      expect(result!.messages.map((m) => m.ruleId)).toContain('no-restricted-imports');
    }
  }, 60_000);
});
