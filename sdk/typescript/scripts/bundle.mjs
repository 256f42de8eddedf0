// Bundles the realtime part, and the whole SDK (realtime and REST), into
// minified ESM files and checks their gzipped sizes against the budgets
// (10 KB and 16 KB). Exits 1 over a budget.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { mkdirSync, writeFileSync } from "node:fs";

const parts = [
  { name: "realtime", file: "partyline.min.js", budget: 10 * 1024, entry: { entryPoints: ["src/index.ts"] } },
  {
    name: "whole SDK",
    file: "partyline-all.min.js",
    budget: 16 * 1024,
    entry: { stdin: { contents: 'export * from "./src/index.ts";\nexport * from "./src/rest.ts";\n', resolveDir: ".", loader: "ts" } },
  },
];
mkdirSync("dist", { recursive: true });
let over = false;
for (const p of parts) {
  const out = await build({
    ...p.entry,
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    platform: "neutral",
    write: false,
    legalComments: "none",
  });
  const code = out.outputFiles[0].contents;
  writeFileSync(`dist/${p.file}`, code);
  const gz = gzipSync(code, { level: 9 }).length;
  console.log(`${p.name}: ${code.length} bytes minified, ${gz} bytes gzipped (budget ${p.budget})`);
  if (gz > p.budget) {
    console.error(`${p.name}: over the size budget by ${gz - p.budget} bytes`);
    over = true;
  }
}
if (over) process.exit(1);
