import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Hono } from "hono";

/** The Swagger UI files, served by the hub itself: the reference must work without internet access (it loaded them from a CDN). */
const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};

const page = (base: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>İYS consent hub API</title>
<link rel="stylesheet" href="${base}/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${base}/api/docs/swagger-ui-bundle.js"></script>
<script src="${base}/api/docs/init.js"></script>
</body>
</html>
`;

/** A script file rather than inline: the page works under a Content-Security-Policy without 'unsafe-inline'. */
const init = (base: string) => `window.ui = SwaggerUIBundle({ url: ${JSON.stringify(`${base}/api/v1/openapi.json`)}, dom_id: "#swagger-ui" });\n`;

/**
 * `/api/docs`: the API reference (Swagger UI over /api/v1/openapi.json). Its addresses start with
 * PUBLIC_BASE_URL's path, as the browser reaches the hub (behind a proxy serving it under /iys).
 */
export function createApiDocsRoutes(publicBaseUrl = "") {
  const base = publicBaseUrl ? new URL(publicBaseUrl).pathname.replace(/\/+$/, "") : "";
  const PAGE = page(base);
  const INIT = init(base);
  const dir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const files = new Map<string, Buffer>();
  const app = new Hono();
  app.get("/", (c) => c.html(PAGE));
  app.get("/init.js", (c) => c.body(INIT, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=3600" }));
  for (const [name, type] of Object.entries(ASSETS)) {
    app.get(`/${name}`, (c) => {
      let body = files.get(name);
      if (!body) files.set(name, (body = readFileSync(join(dir, name))));
      return c.body(new Uint8Array(body), 200, { "content-type": type, "cache-control": "public, max-age=86400" });
    });
  }
  return app;
}
