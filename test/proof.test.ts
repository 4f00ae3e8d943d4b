import { createHash, createPublicKey, verify, type JsonWebKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { formatIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { CHECKPOINT_SPAN, verifyLedger } from "../db/checkpoints";
import { canonicalEvent, EVENT_COLUMNS, type LedgerEvent } from "../db/ledger";
import { authed, deletePrefix, mobileOnay, tempDir, testConfig } from "./helpers";

const tmp = tempDir();
let runtime: Runtime;
let app: App;

beforeAll(async () => {
  runtime = await createRuntime(testConfig(tmp.dir));
  app = createApp(runtime.deps);
  expect((await app.request("/api/v1/brands", authed({ code: "MIGROS", name: "Migros" }))).status).toBe(201);
});

afterAll(async () => {
  await runtime.close();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const b64url = (s: string) => Buffer.from(s, "base64url");

interface Proof {
  event: { id: number; recipient: string; status: string; type: string };
  canonical: string;
  canonicalFields: string[];
  brandId: number;
  contentHash: string;
  prevHash: string;
  hash: string;
  chain: { id: number; contentHash: string; prevHash: string; hash: string }[];
  checkpoint: { eventId: number; hash: string; jws: string };
}

/** A third party's check, written from the published algorithm with node:crypto only (not the hub's code). */
function verifyProof(p: Proof, jwk: JsonWebKey): string | null {
  if (sha256(p.canonical) !== p.contentHash) return "canonical does not match contentHash";
  const fields = JSON.parse(p.canonical) as unknown[];
  if (fields[1] !== p.event.id || fields[3] !== p.event.recipient || fields[5] !== p.event.type || fields[6] !== p.event.status) return "canonical is about another event";
  if (sha256(p.contentHash + p.prevHash) !== p.hash) return "hash does not link content and prevHash";
  let prev = p.hash;
  let last = p.event.id;
  for (const link of p.chain) {
    if (link.prevHash !== prev || link.id !== last + 1) return `chain broken at ${link.id}`;
    if (sha256(link.contentHash + link.prevHash) !== link.hash) return `link ${link.id} hash wrong`;
    prev = link.hash;
    last = link.id;
  }
  const [header, payload, signature] = p.checkpoint.jws.split(".") as [string, string, string];
  const key = createPublicKey({ key: jwk, format: "jwk" });
  if (!verify(null, Buffer.from(`${header}.${payload}`), key, b64url(signature))) return "checkpoint signature invalid";
  const signed = JSON.parse(b64url(payload).toString()) as { eventId: number; hash: string };
  if (signed.eventId !== last || signed.hash !== prev) return "checkpoint does not sign the end of the chain";
  return null;
}

async function record(recipient: string, status: "ONAY" | "RET", minutesAgo: number): Promise<number> {
  const res = await app.request(
    "/api/v1/consents",
    authed({ brand: "MIGROS", recipient, type: "MESAJ", status, source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - minutesAgo * 60_000)) }),
  );
  expect(res.status).toBe(201);
  return (await res.json()).event.id as number;
}

describe("ledger proofs", () => {
  it("a proof verifies with the published public key alone, and names no other recipient", async () => {
    const id = await record("+905321230001", "ONAY", 30);
    await record("+905321230002", "ONAY", 29);
    await record("+905321230003", "ONAY", 28);
    const keyRes = await app.request("/api/v1/ledger/public-key");
    expect(keyRes.status).toBe(200);
    const [jwk] = (await keyRes.json()).keys as JsonWebKey[];
    expect(jwk).toMatchObject({ kty: "OKP", crv: "Ed25519" });
    expect(jwk!.d).toBeUndefined();

    const res = await app.request(`/api/v1/ledger/events/${id}/proof`, authed(undefined, "GET"));
    expect(res.status).toBe(200);
    const proof = (await res.json()) as Proof;
    expect(proof.chain.map((l) => l.id)).toEqual([id + 1, id + 2]);
    expect(verifyProof(proof, jwk!)).toBeNull();
    const text = JSON.stringify(proof);
    expect(text).not.toContain("+905321230002");
    expect(text).not.toContain("+905321230003");
    // A later event's content hash cannot be rebuilt from a guess of its content: its salt is in it (format 3).
    expect(JSON.parse(proof.canonical)[0]).toBe(3);
    // Each element named: what an auditor reads the brand, the recipient and the dates from.
    const named = Object.fromEntries(proof.canonicalFields.map((f, i) => [f, (JSON.parse(proof.canonical) as unknown[])[i]]));
    expect(proof.canonicalFields).toHaveLength(JSON.parse(proof.canonical).length);
    expect(named).toMatchObject({ format: 3, id: proof.event.id, brandId: proof.brandId, recipient: proof.event.recipient, type: proof.event.type, status: proof.event.status });
    const next = runtime.deps.db.$client.prepare(`SELECT ${EVENT_COLUMNS} FROM consent_events WHERE id = ?`).get(id + 1) as LedgerEvent;
    expect(sha256(canonicalEvent(next))).toBe(proof.chain[0]!.contentHash);
    expect(sha256(canonicalEvent({ ...next, salt: null }))).not.toBe(proof.chain[0]!.contentHash);
    expect(text).not.toContain(next.salt!);
  });

  it("an altered proof does not verify", async () => {
    const id = await record("+905321230004", "ONAY", 20);
    const proof = (await (await app.request(`/api/v1/ledger/events/${id}/proof`, authed(undefined, "GET"))).json()) as Proof;
    const [jwk] = (await (await app.request("/api/v1/ledger/public-key")).json()).keys as JsonWebKey[];
    expect(verifyProof(proof, jwk!)).toBeNull();
    expect(verifyProof({ ...proof, canonical: proof.canonical.replace("ONAY", "RET") }, jwk!)).toMatch(/canonical/);
    expect(verifyProof({ ...proof, event: { ...proof.event, status: "RET" } }, jwk!)).toMatch(/another event/);
    const [h, p, s] = proof.checkpoint.jws.split(".");
    const forged = Buffer.from(JSON.stringify({ v: 1, eventId: proof.checkpoint.eventId, hash: "0".repeat(64), issuedAt: "2026-01-01T00:00:00Z" })).toString("base64url");
    expect(verifyProof({ ...proof, checkpoint: { ...proof.checkpoint, jws: `${h}.${forged}.${s}` } }, jwk!)).toMatch(/signature/);
    expect(p).toBeTruthy();
  });

  it("an unknown event is a 404 and a bad id a 400; proofs need the API key, the public key does not", async () => {
    expect((await app.request("/api/v1/ledger/events/999999/proof", authed(undefined, "GET"))).status).toBe(404);
    const bad = await app.request("/api/v1/ledger/events/abc/proof", authed(undefined, "GET"));
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.field).toBe("id");
    expect((await app.request("/api/v1/ledger/events/1/proof")).status).toBe(401);
  });

  it("another brand's key is told the event does not exist, and asking signs no checkpoint", async () => {
    expect((await app.request("/api/v1/brands", authed({ code: "KOTON", name: "Koton" }))).status).toBe(201);
    const created = await app.request("/api/v1/keys", authed({ name: "Koton's platform", brands: ["KOTON"] }));
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };
    const id = await record("+905329990011", "ONAY", 1);
    const checkpoints = () => (runtime.deps.db.$client.prepare("SELECT count(*) AS n FROM ledger_checkpoints").get() as { n: number }).n;
    const before = checkpoints();
    const res = await app.request(`/api/v1/ledger/events/${id}/proof`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(404);
    expect(checkpoints()).toBe(before);
    expect((await app.request(`/api/v1/ledger/events/${id}/proof`, authed(undefined, "GET"))).status).toBe(200);
    expect(checkpoints()).toBe(before + 1);
  });

  it("after thousands of events between two checkpoints (an import between two ticks) a proof carries at most CHECKPOINT_SPAN links, and the ledger still verifies", async () => {
    const brandId = (runtime.deps.db.$client.prepare("SELECT id FROM brands WHERE code = 'MIGROS'").get() as { id: number }).id;
    const first = await record("+905321239000", "ONAY", 10);
    const at = Date.now() - 5 * 60_000;
    for (let i = 0; i < 5; i++) runtime.deps.ledger.apply(Array.from({ length: 1000 }, (_, j) => mobileOnay(brandId, 4_000_000 + i * 1000 + j, at)));
    const res = await app.request(`/api/v1/ledger/events/${first}/proof`, authed(undefined, "GET"));
    expect(res.status).toBe(200);
    const proof = (await res.json()) as Proof;
    expect(proof.chain.length).toBeGreaterThan(0);
    expect(proof.chain.length).toBeLessThanOrEqual(CHECKPOINT_SPAN);
    const [jwk] = (await (await app.request("/api/v1/ledger/public-key")).json()).keys as JsonWebKey[];
    expect(verifyProof(proof, jwk!)).toBeNull();
    // Every proof after it is as short: checkpoints every CHECKPOINT_SPAN events up to the head.
    const last = (runtime.deps.db.$client.prepare("SELECT max(id) AS id FROM consent_events").get() as { id: number }).id;
    const spans = runtime.deps.db.$client.prepare("SELECT event_id AS e FROM ledger_checkpoints WHERE event_id >= ? ORDER BY event_id").all(first) as { e: number }[];
    expect(spans.at(-1)!.e).toBe(last);
    for (let k = 1; k < spans.length; k++) expect(spans[k]!.e - spans[k - 1]!.e).toBeLessThanOrEqual(CHECKPOINT_SPAN);
    expect(await verifyLedger(runtime.deps.db, runtime.deps.ledgerKey.publicKey)).toMatchObject({ ok: true, problems: [] });
  }, 60_000);

  it("the OpenAPI document describes the routes and is served with a reference UI", async () => {
    const doc = await (await app.request("/api/v1/openapi.json")).json();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/check", "/ledger/events/{id}/proof", "/ledger/public-key"]));
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    const ui = await app.request("/api/docs");
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain("/api/docs/init.js");
    expect(await (await app.request("/api/docs/init.js")).text()).toContain("/api/v1/openapi.json");
  });
});
