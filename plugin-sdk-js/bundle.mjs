// Bundle a plugin's entry module and the SDK into one ES module, because
// ComponentizeJS initialises one source file (its module loader only sees
// the entry's directory). `@tributary/plugin-sdk` resolves to ./sdk.js; the
// contract's imports (`tributary:connector/...`) and WASI stay external:
// ComponentizeJS binds them. Usage: node bundle.mjs ENTRY.js OUT.js
import { rolldown } from 'rolldown';
import { fileURLToPath } from 'node:url';

const [entry, out] = process.argv.slice(2);
const sdk = fileURLToPath(new URL('./sdk.js', import.meta.url));
const bundle = await rolldown({
  input: entry,
  platform: 'neutral',
  resolve: { alias: { '@tributary/plugin-sdk': sdk } },
  external: [/^tributary:/, /^wasi:/],
  logLevel: 'warn',
});
await bundle.write({ file: out, format: 'esm', codeSplitting: false });
await bundle.close();
