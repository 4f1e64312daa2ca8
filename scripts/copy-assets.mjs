// Copy the browser libraries the pages use from node_modules into src/cityops/web/static/vendor/,
// so every asset is served by cityops itself (government intranets have no internet, no CDN).
// Plain Node, no bundler: the libraries ship ready-built files. Run after `npm ci`.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const vendor = join(root, "src", "cityops", "web", "static", "vendor");

// [package, file or folder inside the package, target inside vendor/]
const ASSETS = [
  ["leaflet", "dist/leaflet.js", "leaflet/leaflet.js"],
  ["leaflet", "dist/leaflet.css", "leaflet/leaflet.css"],
  ["leaflet", "dist/images", "leaflet/images"],
  ["leaflet", "LICENSE", "leaflet/LICENSE"],
  ["htmx.org", "dist/htmx.min.js", "htmx/htmx.min.js"],
  ["htmx.org", "LICENSE", "htmx/LICENSE"],
  ["echarts", "dist/echarts.min.js", "echarts/echarts.min.js"],
  ["echarts", "LICENSE", "echarts/LICENSE"],
];

function copy(source, target) {
  if (statSync(source).isDirectory()) {
    mkdirSync(target, { recursive: true });
    for (const name of readdirSync(source)) copy(join(source, name), join(target, name));
    return;
  }
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
}

const missing = ASSETS.filter(([pkg, path]) => !existsSync(join(modules, pkg, path)));
if (missing.length) {
  const names = missing.map(([pkg, path]) => `${pkg}/${path}`).join(", ");
  console.error(`error: missing in node_modules: ${names}; run \`npm ci\` first`);
  process.exit(2);
}
// Start clean so a file dropped from the list does not linger in vendor/.
rmSync(vendor, { recursive: true, force: true });
for (const [pkg, path, target] of ASSETS) copy(join(modules, pkg, path), join(vendor, target));
console.log(`copied ${ASSETS.length} web assets into ${vendor.slice(root.length + 1)}`);
