import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['nock', '**/cli/*'], message: 'tests use the simulator; nothing imports cli/' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli/**', 'test/**', 'bin/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
