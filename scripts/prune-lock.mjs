// The registry this project is built against does not carry every platform's
// optional native package (e.g. @msgpackr-extract/*-darwin-*). `npm install`
// then writes a lock whose optional edges point at nothing, and `npm ci`
// refuses it. Run after `npm install`: drops optional edges with no entry.
import fs from "node:fs";

const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
for (const [path, entry] of Object.entries(lock.packages)) {
  if (!entry.optionalDependencies) continue;
  for (const dep of Object.keys(entry.optionalDependencies)) {
    const nested = path ? `${path}/node_modules/${dep}` : `node_modules/${dep}`;
    if (!lock.packages[nested] && !lock.packages[`node_modules/${dep}`]) {
      console.log(`dropping optional ${dep} of ${path || "(root)"}: not in the lock`);
      delete entry.optionalDependencies[dep];
    }
  }
}
fs.writeFileSync("package-lock.json", `${JSON.stringify(lock, null, 2)}\n`);
