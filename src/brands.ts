import { and, asc, eq, inArray, isNull, sql } from "drizzle-orm";
import { stmt, type Db } from "../db/index";
import { brandNumbers, brands, iysPullCursors, numbers } from "../db/schema";
import { ApiError } from "./errors";
import { foldTurkish } from "./domain/turkish";
import { brandNameProblem, effectiveNumberWords, spellings } from "./domain/keywords";

export type Brand = typeof brands.$inferSelect;
export type NumberRow = typeof numbers.$inferSelect;

export interface NewBrand {
  code: string;
  name: string;
  iysCode?: string | null;
  brandCode?: string | null;
  shortNames: string[];
  settings?: Record<string, unknown>;
  numbers: { number: string; provider: "twilio" | "vonage"; channels: ("sms" | "voice")[] }[];
}

const BRAND_COLUMNS = `b.id, b.code, b.name, b.iys_code AS iysCode, b.brand_code AS brandCode, b.short_names AS shortNames, b.settings, b.created_at AS createdAt`;
type RawBrand = Omit<Brand, "shortNames" | "settings"> & { shortNames: string; settings: string };
const toBrand = (r: RawBrand): Brand => ({ ...r, shortNames: JSON.parse(r.shortNames) as string[], settings: JSON.parse(r.settings) as Record<string, unknown> });

/** Read by every job: a cached raw statement rather than a query built per call. */
export function brandByCode(db: Db, code: string): Brand | null {
  const row = stmt<[string], RawBrand>(db, `SELECT ${BRAND_COLUMNS} FROM brands b WHERE b.code = ?`).get(code.toUpperCase());
  return row ? toBrand(row) : null;
}

export function brandById(db: Db, id: number): Brand | null {
  return db.select().from(brands).where(eq(brands.id, id)).get() ?? null;
}

export function listBrands(db: Db): Brand[] {
  return db.select().from(brands).orderBy(asc(brands.code)).all();
}

export type NumberChannel = NumberRow["channels"][number];

/** The brand's numbers, each with the channels the brand uses it for (not every brand on a shared number uses all). */
export function numbersOfBrand(db: Db, brandId: number): NumberRow[] {
  return db
    .select({ n: numbers, channels: brandNumbers.channels })
    .from(brandNumbers)
    .innerJoin(numbers, eq(numbers.id, brandNumbers.numberId))
    .where(and(eq(brandNumbers.brandId, brandId), isNull(brandNumbers.detachedAt)))
    .orderBy(asc(numbers.number))
    .all()
    .map((r) => ({ ...r.n, channels: r.channels }));
}

/**
 * The brands a number serves on `channel`, in the order they were attached; with `at` (ms), the ones
 * it served then: attached by then, and still serving or detached later (an SMS is read against the
 * brands of the moment it reached us, whenever its job runs).
 */
export function brandsOfNumber(db: Db, numberId: number, channel: NumberChannel, at?: number): Brand[] {
  const moment = at ?? Number.MAX_SAFE_INTEGER;
  return stmt<[number, number, number, string], RawBrand>(
    db,
    `SELECT ${BRAND_COLUMNS} FROM brand_numbers bn JOIN brands b ON b.id = bn.brand_id
     WHERE bn.number_id = ? AND bn.attached_at <= ? AND (bn.detached_at IS NULL OR bn.detached_at > ?)
       AND EXISTS (SELECT 1 FROM json_each(bn.channels) WHERE value = ?) ORDER BY bn.position, b.id`,
  )
    .all(numberId, moment, moment, channel)
    .map(toBrand);
}

const numberStatements = new WeakMap<Db, import("better-sqlite3").Statement>();
const numberCache = new WeakMap<Db, Map<string, { row: NumberRow; at: number }>>();
/** How long a known number's row is reused; an unknown number is always looked up again. */
const NUMBER_CACHE_MS = 5000;

/**
 * Looked up on every inbound webhook: a raw prepared statement, and known numbers cached for a few
 * seconds (a number added now is found at once; a changed one is seen within NUMBER_CACHE_MS).
 */
export function numberByValue(db: Db, value: string): NumberRow | null {
  let cache = numberCache.get(db);
  if (!cache) numberCache.set(db, (cache = new Map()));
  const hit = cache.get(value);
  const now = Date.now();
  if (hit && now - hit.at < NUMBER_CACHE_MS) return hit.row;
  let stmt = numberStatements.get(db);
  if (!stmt) {
    stmt = db.$client.prepare("SELECT id, number, provider, channels, created_at AS createdAt, keywords FROM numbers WHERE number = ?");
    numberStatements.set(db, stmt);
  }
  const raw = stmt.get(value) as (Omit<NumberRow, "channels" | "keywords"> & { channels: string; keywords: string | null }) | undefined;
  if (!raw) return null;
  const row = { ...raw, channels: JSON.parse(raw.channels) as NumberRow["channels"], keywords: storedKeywords(raw.keywords) };
  if (cache.size > 10_000) cache.clear();
  cache.set(value, { row, at: now });
  return row;
}

/** A number's stored keyword words; null for none, or for a value that is not JSON (a hand edit: the defaults apply). */
export function storedKeywords(raw: string | null): NumberRow["keywords"] {
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as NumberRow["keywords"];
  } catch {
    return null;
  }
}

type Named = Pick<Brand, "code" | "shortNames" | "brandCode">;

/**
 * Every name a recipient may use for the brand (short names, code, İYS brand number) as entered:
 * the SMS grammar texts each both folded and without its punctuation (McDonald's: "mcdonald",
 * "mcdonalds"), which a folded name has lost.
 */
export function brandTextNames(b: Named): string[] {
  const names = [...b.shortNames, b.code];
  if (b.brandCode) names.push(b.brandCode);
  return [...new Set(names)];
}

/** Every folded name a recipient may use for the brand (what the IVR listens for). */
export function brandNames(b: Named): string[] {
  return [...new Set(brandTextNames(b).map((n) => foldTurkish(n)))];
}

/** Every spelling a recipient may text for the brand: two brands of a number may not share one. */
function brandSpellings(b: Named): string[] {
  return [...new Set(brandTextNames(b).flatMap(spellings))];
}

/**
 * Brands of one number that answer to the same name: refused when a number or name is added, but a
 * pair stored before a change of the folding rules may be one now. A refusal texted with that name
 * refuses both; a consent consents to neither (channels/sms/interpret.ts). Listed at start.
 */
export function nameClashes(db: Db): { number: string; name: string; brands: string[] }[] {
  const links = stmt<[], { numberId: number; number: string }>(
    db,
    `SELECT DISTINCT n.id AS numberId, n.number FROM brand_numbers bn JOIN numbers n ON n.id = bn.number_id WHERE bn.detached_at IS NULL ORDER BY n.number`,
  ).all();
  const out: { number: string; name: string; brands: string[] }[] = [];
  for (const { numberId, number } of links) {
    const byName = new Map<string, string[]>();
    const onNumber = stmt<[number], RawBrand>(
      db,
      `SELECT ${BRAND_COLUMNS} FROM brand_numbers bn JOIN brands b ON b.id = bn.brand_id WHERE bn.number_id = ? AND bn.detached_at IS NULL ORDER BY bn.position, b.id`,
    ).all(numberId);
    for (const b of onNumber.map(toBrand)) for (const name of brandSpellings(b)) byName.set(name, [...(byName.get(name) ?? []), b.code]);
    for (const [name, codes] of byName) if (codes.length > 1) out.push({ number, name, brands: codes });
  }
  return out;
}

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/**
 * A clash of short names with another brand on the number (two brands on one number may not answer
 * to the same name). `held`: spellings the brand answered to already (a change of its names): a
 * clash stored before a rule made it one is listed at start (nameClashes), not a reason to refuse
 * the brand's names sent back.
 */
function assertNoClash(tx: Tx, brand: Brand, numberRow: NumberRow, field: string, held?: ReadonlySet<string>): void {
  const myNames = new Set(brandSpellings(brand).filter((name) => !held?.has(name)));
  const others = tx
    .select({ b: brands })
    .from(brandNumbers)
    .innerJoin(brands, eq(brands.id, brandNumbers.brandId))
    .where(and(eq(brandNumbers.numberId, numberRow.id), isNull(brandNumbers.detachedAt)))
    .all();
  for (const { b } of others) {
    if (b.id === brand.id) continue;
    const clash = brandSpellings(b).find((name) => myNames.has(name));
    if (clash) {
      throw new ApiError("conflict", `number ${numberRow.number} already serves brand ${b.code}, which answers to "${clash}" too`, { field });
    }
  }
}

/**
 * A name of the brand that the number's own keyword words make ambiguous (one of them a scope word
 * there: brandNameProblem); `held` as for assertNoClash. The defaults were checked when the name was given.
 */
export function assertNamesFitNumber(brand: Named, numberRow: Pick<NumberRow, "number" | "keywords">, field: string, held?: ReadonlySet<string>, label = field): void {
  if (!numberRow.keywords) return;
  const words = effectiveNumberWords(numberRow.keywords);
  const keywords = new Set([...words.refuse, ...words.consent, ...words.help]);
  for (const name of brandTextNames(brand)) {
    if (held?.has(foldTurkish(name))) continue;
    // A name texted alone would be a bare keyword: "MIGROS" a bare consent on a one-brand number.
    const keyword = spellings(name).find((n) => keywords.has(n));
    const problem = keyword ? `${JSON.stringify(name)} is a keyword word: texted alone it would be a bare ${words.consent.includes(keyword) ? "consent" : words.refuse.includes(keyword) ? "refusal" : "request for help"}` : brandNameProblem(name, words);
    if (problem) throw new ApiError("bad_request", `${label}: ${problem} (with the keyword words of number ${numberRow.number})`, { field });
  }
}

/** A number's row changed outside attach/detach (its keyword words): numberByValue reads it again. */
export function numberCacheForget(db: Db, number: string): void {
  numberCache.get(db)?.delete(number);
}

/** Attaches numbers to the brand (inside its transaction); `field` names the input array in errors. */
function attachNumbers(db: Db, tx: Tx, brand: Brand, numbersIn: NewBrand["numbers"], now: number, field = "numbers"): void {
  numbersIn.forEach((n, i) => {
    const first = numbersIn.findIndex((m) => m.number === n.number);
    if (first < i) throw new ApiError("bad_request", `${field}[${i}] is ${field}[${first}] again (${n.number})`, { field: `${field}[${i}].number` });
    let row = tx.select().from(numbers).where(eq(numbers.number, n.number)).get();
    let previous: (typeof brandNumbers.$inferSelect) | undefined;
    if (row) {
      const links = tx.select().from(brandNumbers).where(eq(brandNumbers.numberId, row.id)).all();
      // A number no brand uses any more may come back through another provider.
      if (row.provider !== n.provider && links.some((l) => l.detachedAt === null)) {
        throw new ApiError("conflict", `number ${n.number} is already served through ${row.provider}`, { field: `${field}[${i}].provider` });
      }
      previous = links.find((l) => l.brandId === brand.id);
      if (previous && previous.detachedAt === null) {
        throw new ApiError("conflict", `number ${n.number} is already the brand's`, { field: `${field}[${i}].number` });
      }
      assertNoClash(tx, brand, row, "shortNames");
      assertNamesFitNumber(brand, row, `${field}[${i}].number`);
      const active = links.filter((l) => l.detachedAt === null).flatMap((l) => l.channels);
      const channels = [...new Set([...active, ...n.channels])];
      row = tx.update(numbers).set({ channels, provider: n.provider }).where(eq(numbers.id, row.id)).returning().get()!;
      numberCache.get(db)?.delete(row.number);
    } else {
      row = tx.insert(numbers).values({ number: n.number, provider: n.provider, channels: n.channels, createdAt: now }).returning().get();
    }
    // Last in the number's list (positions are never reused, detached links keep theirs).
    const position = tx.select({ n: sql<number>`count(*)` }).from(brandNumbers).where(eq(brandNumbers.numberId, row.id)).get()?.n ?? 0;
    const link = { position, channels: [...new Set(n.channels)], detachedAt: null };
    // Attached again: the first attach time stays (the brand is read as serving in between rather
    // than losing a refusal that arrived before the detach and is applied only now).
    if (previous) tx.update(brandNumbers).set(link).where(and(eq(brandNumbers.numberId, row.id), eq(brandNumbers.brandId, brand.id))).run();
    else tx.insert(brandNumbers).values({ numberId: row.id, brandId: brand.id, ...link, attachedAt: now }).run();
  });
}

/**
 * Detaches numbers from the brand (inside its transaction): the link is marked detached, not
 * deleted, so an SMS that reached the number before is still read against this brand. The number
 * keeps its row (receipts name it) and the channels its other brands use it for; with no brand left
 * it has none, so its webhooks are kept as unroutable (answered, never applied) until a brand takes
 * it again.
 */
function detachNumbers(db: Db, tx: Tx, brand: Brand, values: string[], now: number, field = "removeNumbers"): void {
  values.forEach((value, i) => {
    const first = values.indexOf(value);
    if (first < i) throw new ApiError("bad_request", `${field}[${i}] is ${field}[${first}] again (${value})`, { field: `${field}[${i}]` });
    const row = tx.select().from(numbers).where(eq(numbers.number, value)).get();
    const mine = row && and(eq(brandNumbers.numberId, row.id), eq(brandNumbers.brandId, brand.id), isNull(brandNumbers.detachedAt));
    if (!row || !mine || !tx.select().from(brandNumbers).where(mine).get()) {
      throw new ApiError("bad_request", `${field}[${i}]: number ${value} is not one of brand ${brand.code}'s`, { field: `${field}[${i}]` });
    }
    tx.update(brandNumbers).set({ detachedAt: now }).where(mine).run();
    const left = tx.select({ channels: brandNumbers.channels }).from(brandNumbers).where(and(eq(brandNumbers.numberId, row.id), isNull(brandNumbers.detachedAt))).all();
    tx.update(numbers).set({ channels: [...new Set(left.flatMap((l) => l.channels))] }).where(eq(numbers.id, row.id)).run();
    numberCache.get(db)?.delete(row.number);
  });
}

/** SMS confirmations of calls go from one of the brand's own SMS numbers (not another brand's on a shared one). */
function assertSmsNumberForIvrConfirmation(db: Db, brand: Brand): void {
  if (brand.settings.ivrSmsConfirmation === true && !numbersOfBrand(db, brand.id).some((n) => n.channels.includes("sms"))) {
    throw new ApiError("bad_request", "ivrSmsConfirmation needs a number the brand uses for sms (the confirmation is sent from it)", { field: "settings.ivrSmsConfirmation" });
  }
}

/**
 * Creates a brand and attaches its numbers in one transaction. A number already known with the same
 * provider becomes shared; two brands on one number may not answer to the same short name.
 */
export function createBrand(db: Db, input: NewBrand, now: number): Brand {
  return db.transaction((tx) => {
    if (tx.select({ id: brands.id }).from(brands).where(eq(brands.code, input.code)).get()) {
      throw new ApiError("conflict", `brand ${input.code} already exists`, { field: "code" });
    }
    const brand = tx
      .insert(brands)
      .values({
        code: input.code,
        name: input.name,
        iysCode: input.iysCode ?? null,
        brandCode: input.brandCode ?? null,
        shortNames: input.shortNames,
        settings: input.settings ?? {},
        createdAt: now,
      })
      .returning()
      .get();
    attachNumbers(db, tx, brand, input.numbers, now);
    assertSmsNumberForIvrConfirmation(tx as unknown as Db, brand);
    return brand;
  });
}

export interface BrandPatch {
  name?: string;
  iysCode?: string | null;
  brandCode?: string | null;
  shortNames?: string[];
  settings?: Record<string, unknown>;
  /** Numbers attached in addition to the brand's own. */
  addNumbers?: NewBrand["numbers"];
  /** Numbers (as stored) the brand stops using; detached before `addNumbers` are attached. */
  removeNumbers?: string[];
}

/**
 * Changes a brand in one transaction: the given fields replace the stored ones (`settings` as a
 * whole), `removeNumbers` are detached, then `addNumbers` attached. New short names are checked
 * against the other brands on each of its numbers, as at creation. Null when there is no such brand.
 */
export function updateBrand(db: Db, code: string, patch: BrandPatch, now: number): Brand | null {
  return db.transaction((tx) => {
    const current = tx.select().from(brands).where(eq(brands.code, code.toUpperCase())).get();
    if (!current) return null;
    const { addNumbers, removeNumbers, ...fields } = patch;
    const brand =
      Object.keys(fields).length > 0 ? tx.update(brands).set(fields).where(eq(brands.id, current.id)).returning().get()! : current;
    // Numbers left first: new names need not clash on a number the brand is leaving.
    if (removeNumbers?.length) detachNumbers(db, tx, brand, removeNumbers, now);
    if (fields.shortNames !== undefined || fields.brandCode !== undefined) {
      const held = new Set(brandSpellings(current));
      for (const n of numbersOfBrand(tx as unknown as Db, brand.id)) {
        assertNoClash(tx, brand, n, "shortNames", held);
        assertNamesFitNumber(brand, n, "shortNames", held);
      }
    }
    if (addNumbers?.length) attachNumbers(db, tx, brand, addNumbers, now, "addNumbers");
    // Other İYS codes are another İYS brand: its pull starts afresh (İYS's pointer belongs to the old one).
    if (brand.iysCode !== current.iysCode || brand.brandCode !== current.brandCode) {
      tx.delete(iysPullCursors).where(eq(iysPullCursors.brandId, brand.id)).run();
    }
    assertSmsNumberForIvrConfirmation(tx as unknown as Db, brand);
    return brand;
  });
}

export function brandsByIds(db: Db, ids: number[]): Map<number, Brand> {
  if (ids.length === 0) return new Map();
  return new Map(db.select().from(brands).where(inArray(brands.id, ids)).all().map((b) => [b.id, b]));
}
