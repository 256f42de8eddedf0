// Bundles the realtime part into one minified ESM file and checks its
// gzipped size against the budget (10 KB). Exits 1 over budget.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { mkdirSync, writeFileSync } from "node:fs";

const budget = 10 * 1024;
const out = await build({
  entryPoints: ["src/index.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  platform: "neutral",
  write: false,
  legalComments: "none",
});
const code = out.outputFiles[0].contents;
mkdirSync("dist", { recursive: true });
writeFileSync("dist/partyline.min.js", code);
const gz = gzipSync(code, { level: 9 }).length;
console.log(`realtime: ${code.length} bytes minified, ${gz} bytes gzipped (budget ${budget})`);
if (gz > budget) {
  console.error(`realtime: over the size budget by ${gz - budget} bytes`);
  process.exit(1);
}
