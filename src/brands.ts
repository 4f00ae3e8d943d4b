import { asc, eq, inArray } from "drizzle-orm";
import type { Db } from "../db/index";
import { brandNumbers, brands, numbers } from "../db/schema";
import { ApiError } from "./errors";
import { foldTurkish } from "./domain/turkish";

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

export function brandByCode(db: Db, code: string): Brand | null {
  return db.select().from(brands).where(eq(brands.code, code.toUpperCase())).get() ?? null;
}

export function brandById(db: Db, id: number): Brand | null {
  return db.select().from(brands).where(eq(brands.id, id)).get() ?? null;
}

export function listBrands(db: Db): Brand[] {
  return db.select().from(brands).orderBy(asc(brands.code)).all();
}

export function numbersOfBrand(db: Db, brandId: number): NumberRow[] {
  return db
    .select({ n: numbers })
    .from(brandNumbers)
    .innerJoin(numbers, eq(numbers.id, brandNumbers.numberId))
    .where(eq(brandNumbers.brandId, brandId))
    .orderBy(asc(numbers.number))
    .all()
    .map((r) => r.n);
}

/** The brands a number serves, in the order they were attached. */
export function brandsOfNumber(db: Db, numberId: number): Brand[] {
  return db
    .select({ b: brands })
    .from(brandNumbers)
    .innerJoin(brands, eq(brands.id, brandNumbers.brandId))
    .where(eq(brandNumbers.numberId, numberId))
    .orderBy(asc(brandNumbers.position), asc(brands.id))
    .all()
    .map((r) => r.b);
}

export function numberByValue(db: Db, value: string): NumberRow | null {
  return db.select().from(numbers).where(eq(numbers.number, value)).get() ?? null;
}

/** Every folded name a recipient may use for the brand (short names, code, İYS brand number). */
export function brandNames(b: Pick<Brand, "code" | "shortNames" | "brandCode">): string[] {
  const names = [...b.shortNames, b.code];
  if (b.brandCode) names.push(b.brandCode);
  return [...new Set(names.map((n) => foldTurkish(n)))];
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
    const myNames = new Set(brandNames(brand));
    input.numbers.forEach((n, i) => {
      let row = tx.select().from(numbers).where(eq(numbers.number, n.number)).get();
      if (row && row.provider !== n.provider) {
        throw new ApiError("conflict", `number ${n.number} is already served through ${row.provider}`, { field: `numbers[${i}].provider` });
      }
      if (row) {
        const others = tx
          .select({ b: brands })
          .from(brandNumbers)
          .innerJoin(brands, eq(brands.id, brandNumbers.brandId))
          .where(eq(brandNumbers.numberId, row.id))
          .all();
        for (const { b } of others) {
          const clash = brandNames(b).find((name) => myNames.has(name));
          if (clash) {
            throw new ApiError("conflict", `number ${n.number} already serves brand ${b.code}, which answers to "${clash}" too`, {
              field: "shortNames",
            });
          }
        }
        const channels = [...new Set([...row.channels, ...n.channels])];
        tx.update(numbers).set({ channels }).where(eq(numbers.id, row.id)).run();
      } else {
        row = tx.insert(numbers).values({ number: n.number, provider: n.provider, channels: n.channels, createdAt: now }).returning().get();
      }
      const position = tx.select({ id: brandNumbers.brandId }).from(brandNumbers).where(eq(brandNumbers.numberId, row.id)).all().length;
      tx.insert(brandNumbers).values({ numberId: row.id, brandId: brand.id, position }).run();
    });
    return brand;
  });
}

export function brandsByIds(db: Db, ids: number[]): Map<number, Brand> {
  if (ids.length === 0) return new Map();
  return new Map(db.select().from(brands).where(inArray(brands.id, ids)).all().map((b) => [b.id, b]));
}
