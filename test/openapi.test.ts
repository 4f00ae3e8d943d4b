import { createHash } from "node:crypto";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consentChangedBody } from "../jobs/deliver-callback.handler";
import { createApp, type App } from "../src/app";
import { createApiDocsRoutes } from "../src/api-docs";
import { formatIysDate, parseIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { ADMIN_KEY, authed, deletePrefix, tempDir, testConfig } from "./helpers";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const tmp = tempDir();
const recently = () => formatIysDate(new Date(Date.now() - 10 * 60_000));
let runtime: Runtime;
let app: App;
let doc: Json;

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

/**
 * The document's components as two JSON Schema 2020-12 resources: `doc` as written (examples), and
 * `docStrict` where every object lists all its properties (responses: a field the hub sends but the
 * document does not describe fails the contract).
 */
function registerDocument(d: Json) {
  const retarget = (o: unknown, id: string) => JSON.parse(JSON.stringify(o).replaceAll('"$ref":"#/components/', `"$ref":"${id}#/components/`));
  ajv.addSchema({ $id: "doc", components: retarget(d.components, "doc") });
  const strict = retarget(d.components, "docStrict");
  ajv.addSchema({ $id: "docStrict", components: closeObjects(strict, strict) });
  strictComponents = strict;
}

/**
 * Every object with `properties` gets `unevaluatedProperties: false`. The members of an `allOf`
 * (a schema extending another) stay open, a `$ref` among them inlined, so the properties of all of
 * them count for the closed `allOf` around them.
 */
function closeObjects(node: unknown, components: Json, open = false): unknown {
  if (Array.isArray(node)) return node.map((n) => closeObjects(n, components));
  if (!node || typeof node !== "object") return node;
  const n = node as Json;
  if (open && typeof n.$ref === "string") {
    const [, section, name] = /#\/components\/([^/]+)\/(.+)$/.exec(n.$ref) ?? [];
    return closeObjects(components[section!][name!], components, true);
  }
  const out: Json = Object.fromEntries(
    Object.entries(n).map(([k, v]) => [k, k === "allOf" && Array.isArray(v) ? v.map((m) => closeObjects(m, components, true)) : closeObjects(v, components)]),
  );
  if (!open && (out.properties || out.allOf) && out.additionalProperties === undefined) out.unevaluatedProperties = false;
  return out;
}

let strictComponents: Json = {};
const compiled = new Map<string, ValidateFunction>();
function validator(schema: Json, strict = false): ValidateFunction {
  const text = JSON.stringify(schema);
  const id = strict ? "docStrict" : "doc";
  const key = `${id}:${text}`;
  let v = compiled.get(key);
  if (!v) {
    const retargeted = JSON.parse(text.replaceAll('"$ref":"#/components/', `"$ref":"${id}#/components/`));
    v = ajv.compile(strict ? (closeObjects(retargeted, strictComponents) as Json) : retargeted);
    compiled.set(key, v);
  }
  return v;
}

function expectValid(schema: Json, value: unknown, where: string, strict = false) {
  const v = validator(schema, strict);
  const ok = v(value);
  expect(ok, `${where}: ${ajv.errorsText(v.errors)}\n${JSON.stringify(value).slice(0, 500)}`).toBe(true);
}

const methods = ["get", "post", "put", "patch", "delete"] as const;

function operations(): { path: string; method: string; op: Json }[] {
  return Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    methods.filter((m) => item[m]).map((method) => ({ path, method, op: item[method] as Json })),
  );
}

const op = (path: string, method: string): Json => {
  const o = doc.paths[path]?.[method];
  if (!o) throw new Error(`${method.toUpperCase()} ${path} is not in the document`);
  return o;
};
const requestExample = (path: string, method: string) => {
  const example = op(path, method).requestBody?.content?.["application/json"]?.example;
  if (example === undefined) throw new Error(`${method.toUpperCase()} ${path} documents no request example`);
  return example as Json;
};
const responseSchema = (path: string, method: string, status: number) => {
  const schema = op(path, method).responses?.[status]?.content?.["application/json"]?.schema;
  if (!schema) throw new Error(`${method.toUpperCase()} ${path} documents no ${status} JSON response`);
  return schema as Json;
};

/** Calls a documented route and checks the answer against the documented schema of its status. */
async function callDocumented(path: string, method: string, init: { body?: unknown; url?: string; key?: string }, status: number) {
  const res = await app.request(`/api/v1${init.url ?? path}`, {
    method: method.toUpperCase(),
    headers: { authorization: `Bearer ${init.key ?? ADMIN_KEY}`, ...(init.body === undefined ? {} : { "content-type": "application/json" }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(status);
  expectValid(responseSchema(path, method, status), body, `${method.toUpperCase()} ${path} → ${status}`, true);
  return body as Json;
}

beforeAll(async () => {
  runtime = await createRuntime(testConfig(tmp.dir));
  app = createApp(runtime.deps);
  const res = await app.request("/api/v1/openapi.json");
  expect(res.status).toBe(200);
  doc = (await res.json()) as Json;
  registerDocument(doc);
});

afterAll(async () => {
  await runtime.close();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

describe("the OpenAPI document", () => {
  it("is served without a key as OpenAPI 3.1 with the bearer security scheme", async () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    const ui = await app.request("/api/docs");
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain("/api/docs/init.js");
    expect(await (await app.request("/api/docs/init.js")).text()).toContain("/api/v1/openapi.json");
    // Served under a path (a proxy's /iys): the page's addresses carry it, as the browser reaches them.
    const docs = createApiDocsRoutes("https://example.com/iys");
    expect(await (await docs.request("/")).text()).toMatch(/href="\/iys\/api\/docs\/swagger-ui\.css"[^]*src="\/iys\/api\/docs\/init\.js"/);
    expect(await (await docs.request("/init.js")).text()).toContain('url: "/iys/api/v1/openapi.json"');
  });

  it("documents every route the app serves under /api/v1, and nothing it does not serve", () => {
    const undocumented = new Set(["GET /openapi.json"]);
    const served = new Set(
      app.routes
        .filter((r) => r.path.startsWith("/api/v1/") && r.method !== "ALL" && !r.path.endsWith("*"))
        .map((r) => `${r.method} ${r.path.slice("/api/v1".length).replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`)
        .filter((r) => !undocumented.has(r)),
    );
    const documented = new Set(operations().map((o) => `${o.method.toUpperCase()} ${o.path}`));
    expect(served.size).toBeGreaterThan(20);
    expect([...served].filter((r) => !documented.has(r)), "served but not documented").toEqual([]);
    expect([...documented].filter((r) => !served.has(r)), "documented but not served").toEqual([]);
  });

  it("gives every operation a summary, a success response with a schema, and a request schema where it takes a body", () => {
    // POSTs that act on the path alone (a body, if any, is ignored).
    const bodyless = new Set([
      "POST /subscriptions/{id}/rotate-secret",
      "POST /deliveries/{outboxId}/replay",
      "POST /brands/{brand}/partners/{retailerCode}/rotate-secret",
      "POST /brands/{brand}/partners/{retailerCode}/rotate-key",
    ]);
    const problems: string[] = [];
    for (const { path, method, op } of operations()) {
      const name = `${method.toUpperCase()} ${path}`;
      if (!op.summary?.trim()) problems.push(`${name}: no summary`);
      const success = Object.entries(op.responses ?? {}).filter(([status]) => /^2\d\d$/.test(status));
      if (success.length === 0) problems.push(`${name}: no 2xx response`);
      for (const [status, r] of success as [string, Json][]) {
        if (status !== "204" && !Object.values(r.content ?? {}).some((m) => (m as Json).schema)) problems.push(`${name}: ${status} has no schema`);
      }
      if (["post", "put", "patch"].includes(method) && !bodyless.has(name)) {
        const content = op.requestBody?.content ?? {};
        if (!Object.values(content).some((m) => (m as Json).schema)) problems.push(`${name}: no request body schema`);
      }
      for (const p of (op.parameters ?? []) as Json[]) if (!p.schema) problems.push(`${name}: parameter ${p.name} has no schema`);
    }
    expect(problems).toEqual([]);
  });

  it("has examples, each valid against the schema it illustrates", () => {
    const checked: string[] = [];
    const visit = (node: unknown, where: string) => {
      if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${where}/${i}`));
      if (!node || typeof node !== "object") return;
      const n = node as Json;
      if (n.schema && "example" in n) {
        expectValid(n.schema, n.example, `${where} (example)`);
        checked.push(where);
      }
      if (n.schema && n.examples && typeof n.examples === "object" && !Array.isArray(n.examples)) {
        for (const [k, e] of Object.entries(n.examples as Json)) {
          expectValid(n.schema, (e as Json).value, `${where}/examples/${k}`);
          checked.push(`${where}/examples/${k}`);
        }
      }
      const isSchema = ["type", "$ref", "properties", "anyOf", "oneOf", "allOf", "enum", "const", "items"].some((k) => k in n);
      if (!n.schema && isSchema && "example" in n) {
        const { example, ...schema } = n;
        expectValid(schema, example, `${where} (example)`);
        checked.push(where);
      }
      if (!n.schema && isSchema && Array.isArray(n.examples)) {
        const { examples, ...schema } = n;
        (examples as unknown[]).forEach((e, i) => expectValid(schema, e, `${where}/examples/${i}`));
        checked.push(where);
      }
      for (const [k, v] of Object.entries(n)) if (k !== "example" && k !== "examples") visit(v, `${where}/${k}`);
    };
    visit(doc.paths, "#/paths");
    visit(doc.webhooks, "#/webhooks");
    visit(doc.components, "#/components");
    expect(checked.length).toBeGreaterThan(30);
    // The request bodies a caller copies first carry a whole example.
    for (const [path, method] of [["/brands", "post"], ["/consents", "post"], ["/check", "post"], ["/links", "post"], ["/keys", "post"]] as const) {
      expect(requestExample(path, method)).toBeTypeOf("object");
    }
  });

  it("describes the callbacks the hub sends (webhooks): the bodies it builds validate, strictly, and the signing headers are named", () => {
    const body = (name: string) => doc.webhooks[name].post.requestBody.content["application/json"].schema as Json;
    const change = consentChangedBody({
      id: 42, brand: "MIGROS", brandId: 1, recipient: "+905321234567", recipientType: "BIREYSEL", type: "MESAJ", status: "RET", source: "HS_MESAJ",
      consentDate: Date.UTC(2026, 11, 3, 9, 41, 27), retailerCode: "12345678", receivedAt: Date.UTC(2026, 11, 3, 9, 41, 28), hash: "ab".repeat(32),
    } as Parameters<typeof consentChangedBody>[0]);
    expect(validator(body("consent.changed"), true)(JSON.parse(change))).toBe(true);
    expect(validator(body("consent.changed"), true)({ ...JSON.parse(change), extra: 1 })).toBe(false);
    const headers = (doc.webhooks["consent.changed"].post.parameters as { name: string; in: string }[]).filter((p) => p.in === "header").map((p) => p.name);
    expect(headers.sort()).toEqual(["webhook-id", "webhook-signature", "webhook-timestamp"]);
    expect(doc.webhooks["endpoint.disabled"].post.requestBody).toBeTypeOf("object");
  });

  it("a wrong example and an undocumented response field are caught: the validator is not a rubber stamp", async () => {
    const schema = doc.paths["/consents"].post.requestBody.content["application/json"].schema as Json;
    expect(validator(schema)(requestExample("/consents", "post"))).toBe(true);
    expect(validator(schema)({ ...requestExample("/consents", "post"), type: "FAKS" })).toBe(false);
    expect((await app.request("/api/v1/brands", authed({ code: "RUBBER", name: "Rubber" }))).status).toBe(201);
    const brand = (await (await app.request("/api/v1/brands/RUBBER", authed(undefined, "GET"))).json()) as Json;
    const strict = validator(responseSchema("/brands/{code}", "get", 200), true);
    expect(strict(brand)).toBe(true);
    expect(strict({ ...brand, undocumented: true })).toBe(false);
    const created = validator(responseSchema("/keys", "post", 201), true);
    const key = { id: "key_1", name: "n", brands: "*", prefix: "hub_abcd", status: "active", createdAt: "2026-01-01T00:00:00.000Z", revokedAt: null, key: "hub_x" };
    expect(created(key)).toBe(true);
    expect(created({ ...key, keyHash: "00" })).toBe(false);
  });
});

describe("routes called with their documented examples", () => {
  it("answer what the document says: brands, consents, check, links and keys", async () => {
    const brandExample = requestExample("/brands", "post");
    const brand = await callDocumented("/brands", "post", { body: brandExample }, 201);
    expect(brand.code).toBe(brandExample.code);
    await callDocumented("/brands", "get", {}, 200);
    await callDocumented("/brands/{code}", "get", { url: `/brands/${brand.code}` }, 200);

    const consent = await callDocumented("/consents", "post", { body: requestExample("/consents", "post") }, 201);
    const query = Object.fromEntries((op("/consents", "get").parameters as Json[]).map((p) => [p.name, p.schema.example ?? p.example]));
    const history = await callDocumented("/consents", "get", { url: `/consents?${new URLSearchParams(query)}` }, 200);
    expect(history.events.map((e: Json) => e.id)).toContain(consent.event.id);

    const check = await callDocumented("/check", "post", { body: requestExample("/check", "post") }, 200);
    expect(check.allowed).toContain("0532 123 45 67");
    expect(check.denied).toContainEqual({ recipient: "+905551112233", reason: "no_consent" });
    await callDocumented("/links", "post", { body: requestExample("/links", "post") }, 200);
    await callDocumented("/keys", "post", { body: requestExample("/keys", "post") }, 201);
    await callDocumented("/keys", "get", {}, 200);

    // The upload's example is dated an hour ago whenever the document is served: İYS (and the hub)
    // refuse a movement older than 3 business days (H467), so a fixed date would fail "Try it out".
    const csv = op("/imports", "post").requestBody.content["text/csv"].schema.example as string;
    const date = csv.split("\n")[1]!.split(",")[4]!;
    const parsed = parseIysDate(date);
    if (!parsed.ok) throw new Error(`the example's date ${date} is not in İYS format`);
    expect(Date.now() - parsed.date.getTime()).toBeGreaterThan(3_500_000);
    expect(Date.now() - parsed.date.getTime()).toBeLessThan(7_300_000);
    // Another brand: the consent example above holds the same number already (ONAY again would be H174).
    expect((await app.request("/api/v1/brands", authed({ code: "TRYIT", name: "Try it" }))).status).toBe(201);
    const upload = await app.request(`/api/v1/imports?brand=TRYIT`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/csv" }, body: csv });
    expect(upload.status).toBe(200);
    expect(await upload.json()).toMatchObject({ rowsRead: 1, recorded: 1, rejected: 0 });
  });

  it("a bad request is answered with the documented error shape naming the field; malformed JSON names (body), another content type is a 415", async () => {
    const { type: _type, ...noType } = requestExample("/consents", "post");
    const body = await callDocumented("/consents", "post", { body: noType }, 400);
    expect(body.error).toMatchObject({ code: "bad_request", field: "type", message: "type: required" });
    const keyBrands = await callDocumented("/keys", "post", { body: { name: "Acme", brands: "MIGROS" } }, 400);
    expect(keyBrands.error).toMatchObject({ field: "brands", message: 'brands: a list of brand codes (["MIGROS"]), or "*" for every brand' });
    expect((await callDocumented("/keys", "post", { body: { name: "Acme" } }, 400)).error).toMatchObject({ field: "brands", message: "brands: required" });
    for (const path of ["/consents", "/brands", "/links", "/check", "/keys", "/subscriptions"]) {
      const malformed = await app.request(`/api/v1${path}`, { method: "POST", headers: authed().headers, body: "{ not json" });
      expect(malformed.status, path).toBe(400);
      expect((await malformed.json()).error, path).toMatchObject({ code: "bad_request", field: "(body)" });
      const text = await app.request(`/api/v1${path}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/plain" }, body: "{}" });
      expect(text.status, path).toBe(415);
    }
    const unknown = await callDocumented("/brands/{code}", "get", { url: "/brands/NOPE" }, 404);
    expect(unknown.error.code).toBe("not_found");
  });
});

describe("API keys", () => {
  const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
  const as = (key: string, path: string, body?: unknown, method = body === undefined ? "GET" : "POST") =>
    app.request(`/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const createKey = async (body: unknown) => {
    const res = await app.request("/api/v1/keys", authed(body));
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; key: string; brands: string[] | "*"; status: string };
  };

  beforeAll(async () => {
    for (const code of ["KEYA", "KEYB"]) expect((await app.request("/api/v1/brands", authed({ code, name: code }))).status).toBe(201);
  });

  it("a key is shown once at creation, listed without its secret, and only its SHA-256 is in the database", async () => {
    const created = await createKey({ name: "Acme SMS", brands: ["keya"] });
    expect(created.key).toMatch(/^hub_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({ brands: ["KEYA"], status: "active" });
    const listed = await (await app.request("/api/v1/keys", authed(undefined, "GET"))).text();
    expect(listed).toContain(created.id);
    expect(listed).not.toContain(created.key);
    const rows = runtime.deps.db.$client.prepare("SELECT * FROM api_keys WHERE id = ?").all(created.id) as Json[];
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key_hash).toBe(sha256(created.key));
    expect(JSON.stringify(rows)).not.toContain(created.key.slice(4));
  });

  it("a scoped key gets 200 for its own brand, 403 naming any other brand, and sees only its brands in lists", async () => {
    const { key } = await createKey({ name: "scoped", brands: ["KEYA"] });
    expect((await as(key, "/brands/KEYA")).status).toBe(200);
    const other = await as(key, "/brands/KEYB");
    expect(other.status).toBe(403);
    expect((await other.json()).error).toMatchObject({ code: "forbidden", message: expect.stringContaining("KEYB") });
    const check = await as(key, "/check", { brand: "keyb", type: "MESAJ", recipients: ["+905321110001"] });
    expect(check.status).toBe(403);
    expect((await check.json()).error).toMatchObject({ code: "forbidden", field: "brand" });
    expect((await as(key, "/check", { brand: "KEYA", type: "MESAJ", recipients: ["+905321110001"] })).status).toBe(200);
    const consent = { brand: "KEYB", recipient: "+905321110002", type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: recently() };
    expect((await as(key, "/consents", consent)).status).toBe(403);
    expect((await as(key, "/consents", { ...consent, brand: "KEYA" })).status).toBe(201);
    expect((await as(key, "/links", { brand: "KEYB", recipient: "a@example.com" })).status).toBe(403);
    expect((await as(key, "/brands/KEYB/partners")).status).toBe(403);
    expect((await as(key, "/brands/KEYA/partners")).status).toBe(200);
    const { brands } = (await (await as(key, "/brands")).json()) as { brands: { code: string }[] };
    expect(brands.map((b) => b.code)).toEqual(["KEYA"]);
  });

  it("a scoped key cannot import into, report on or read the imports of another brand", async () => {
    const { key } = await createKey({ name: "bulk", brands: ["KEYA"] });
    const csv = (brand: string) =>
      app.request(`/api/v1/imports?brand=${brand}`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "text/csv" }, body: "type,recipient,status,source,consentDate\n" });
    expect((await csv("KEYB")).status).toBe(403);
    expect((await csv("KEYA")).status).toBe(200);
    expect((await as(key, "/imports?brand=KEYB")).status).toBe(403);
    expect((await as(key, "/reports/daily?brand=KEYB&date=2026-11-20")).status).toBe(403);
    expect((await as(key, "/reports/daily?brand=KEYA&date=2026-11-20")).status).toBe(200);
    const admins = await app.request("/api/v1/imports?brand=KEYB", { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/csv" }, body: "type,recipient,status,source,consentDate\n" });
    const { id } = (await admins.json()) as { id: number };
    expect((await as(key, `/imports/${id}`)).status).toBe(404);
    expect((await app.request(`/api/v1/imports/${id}`, authed(undefined, "GET"))).status).toBe(200);
  });

  it("a scoped key cannot read the proof of another brand's event", async () => {
    const { key } = await createKey({ name: "prover", brands: ["KEYA"] });
    const other = await app.request("/api/v1/consents", authed({ brand: "KEYB", recipient: "+905321110003", type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: recently() }));
    const own = await app.request("/api/v1/consents", authed({ brand: "KEYA", recipient: "+905321110003", type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: recently() }));
    const otherId = ((await other.json()) as { event: { id: number } }).event.id;
    const ownId = ((await own.json()) as { event: { id: number } }).event.id;
    expect((await as(key, `/ledger/events/${otherId}/proof`)).status).toBe(404);
    const proof = await as(key, `/ledger/events/${ownId}/proof`);
    expect(proof.status).toBe(200);
    expectValid(responseSchema("/ledger/events/{id}/proof", "get", 200), await proof.json(), "proof", true);
  });

  it("a provider key is refused the admin areas: keys, brand creation, subscriptions and deliveries", async () => {
    const { key } = await createKey({ name: "everything", brands: "*" });
    expect((await as(key, "/brands/KEYB")).status).toBe(200);
    for (const [path, body, method] of [
      ["/keys", undefined, "GET"],
      ["/keys", { name: "escalate", brands: "*" }, "POST"],
      ["/brands", { code: "KEYC", name: "KEYC" }, "POST"],
      ["/subscriptions", undefined, "GET"],
      ["/subscriptions", { url: "https://example.com/hook" }, "POST"],
      ["/deliveries/1/replay", {}, "POST"],
    ] as const) {
      const res = await as(key, path, body, method);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect((await res.json()).error.code).toBe("forbidden");
    }
  });

  it("a revoked key is refused with 401 from the next request on", async () => {
    const { id, key } = await createKey({ name: "short-lived", brands: ["KEYA"] });
    expect((await as(key, "/brands/KEYA")).status).toBe(200);
    expect((await app.request(`/api/v1/keys/${id}`, authed(undefined, "DELETE"))).status).toBe(204);
    const res = await as(key, "/brands/KEYA");
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe("unauthorized");
    const { keys } = (await (await app.request("/api/v1/keys", authed(undefined, "GET"))).json()) as { keys: { id: string; status: string }[] };
    expect(keys.find((k) => k.id === id)?.status).toBe("revoked");
    expect((await app.request("/api/v1/keys/key_nope", authed(undefined, "DELETE"))).status).toBe(404);
  });

  it("a key for an unknown brand is a 400 naming it, and a malformed scope a 400 naming brands", async () => {
    const unknown = await app.request("/api/v1/keys", authed({ name: "x", brands: ["KEYA", "NOPE"] }));
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error.field).toBe("brands[1]");
    const bad = await app.request("/api/v1/keys", authed({ name: "x", brands: "all" }));
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.field).toBe("brands");
    expect(runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM api_keys WHERE name = 'x'").get()).toEqual({ n: 0 });
  });
});
