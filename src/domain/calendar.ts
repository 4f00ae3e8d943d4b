import table from "./holidays.json";
import { civilFromDays, daysFromCivil, daysInMonth, fromIstanbulWall, toIstanbulWall } from "./time";

/** A holiday on the same date every year; `date` is `MM-DD`. */
export interface FixedHoliday {
  date: string;
  name: string;
}

/** A working day whose afternoon is off; `date` is `MM-DD`, `from` is `HH:mm` Istanbul time. */
export interface FixedHalfDay {
  date: string;
  from: string;
  name: string;
}

/** One year's religious holidays (dates `YYYY-MM-DD`); they follow the lunar calendar and are announced yearly. */
export interface ReligiousHolidays {
  ramazanArife: string;
  ramazan: string[];
  kurbanArife: string;
  kurban: string[];
}

export interface HolidayTable {
  fixed: FixedHoliday[];
  fixedHalfDays: FixedHalfDay[];
  /** Keyed by the year (`"2026"`); a year missing here is unknown and business-day arithmetic in it fails. */
  years: Record<string, ReligiousHolidays>;
}

export const defaultHolidayTable: HolidayTable = table;

const HOLIDAY_TABLE_FILE = "src/domain/holidays.json";
const ARIFE_FROM = "13:00";
const DAY = 86_400_000;

export class UnknownHolidayYearError extends Error {
  override readonly name = "UnknownHolidayYearError";
  constructor(readonly year: number) {
    super(
      `No holiday data for ${year}: the religious holidays (Ramazan and Kurban Bayramı) of ${year} must be added ` +
        `to the holiday table (${HOLIDAY_TABLE_FILE}, or the JSON file named by HOLIDAYS_PATH) before business days in ${year} can be computed.`,
    );
  }
}

/** `extra` wins: its fixed entries replace same-date ones, and its years replace whole years of `base`. */
export function mergeHolidayTables(base: HolidayTable, extra: Partial<HolidayTable>): HolidayTable {
  const byDate = <T extends { date: string }>(a: readonly T[], b: readonly T[] | undefined): T[] => {
    const m = new Map<string, T>();
    for (const e of a) m.set(e.date, e);
    for (const e of b ?? []) m.set(e.date, e);
    return [...m.values()].sort((x, y) => (x.date < y.date ? -1 : x.date > y.date ? 1 : 0));
  };
  return {
    fixed: byDate(base.fixed, extra.fixed),
    fixedHalfDays: byDate(base.fixedHalfDays, extra.fixedHalfDays),
    years: { ...base.years, ...(extra.years ?? {}) },
  };
}

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const MONTH_DAY_RE = /^(\d{2})-(\d{2})$/;
const TIME_RE = /^([01]\d|2[0-3]):[0-5]\d$/;

function dayNumberOf(day: string): number | null {
  const m = DAY_RE.exec(day);
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return null;
  return daysFromCivil(y, mo, d);
}

function parseDay(day: string): number {
  const n = dayNumberOf(day);
  if (n === null) throw new RangeError(`Not a YYYY-MM-DD date: ${JSON.stringify(day)}`);
  return n;
}

function invalid(what: string): never {
  throw new Error(`Invalid holiday table: ${what}`);
}

function tableDay(day: unknown, where: string): number {
  const n = typeof day === "string" ? dayNumberOf(day) : null;
  return n ?? invalid(`${where} is not a YYYY-MM-DD date (${JSON.stringify(day)})`);
}

function monthDay(md: unknown, where: string): { m: number; d: number } {
  const x = typeof md === "string" ? MONTH_DAY_RE.exec(md) : null;
  const m = Number(x?.[1]);
  const d = Number(x?.[2]);
  // 29 February is allowed as a fixed date; it simply does not occur in common years.
  if (!x || m < 1 || m > 12 || d < 1 || d > daysInMonth(2000, m)) invalid(`${where} is not an MM-DD date (${JSON.stringify(md)})`);
  return { m, d };
}

function dayList(days: unknown, where: string): number[] {
  if (!Array.isArray(days) || days.length === 0) invalid(`${where} must be a non-empty list of YYYY-MM-DD dates`);
  return days.map((d, i) => tableDay(d, `${where}[${i}]`));
}

/**
 * Turkish business days (Law 2429) in Europe/Istanbul time. Saturdays, Sundays and full-day official
 * holidays are closed; half days (arife afternoons, 28 October afternoon) count as business days so
 * that deadlines err on the early side. A date in a year missing from the table throws
 * UnknownHolidayYearError instead of being guessed.
 */
export class BusinessCalendar {
  private readonly knownYears: ReadonlySet<number>;
  private readonly closed = new Map<number, string>();
  private readonly halfDays = new Map<number, { from: string; name: string }>();

  constructor(table: HolidayTable = defaultHolidayTable) {
    if (!table || typeof table !== "object") invalid("not an object");
    const entries = Object.entries(table.years ?? {});
    const years = new Set<number>();
    for (const [key] of entries) {
      if (!/^\d{4}$/.test(key)) invalid(`year key ${JSON.stringify(key)} is not a 4-digit year`);
      years.add(Number(key));
    }
    (table.fixed ?? []).forEach((f, i) => {
      if (typeof f?.name !== "string" || f.name === "") invalid(`fixed[${i}].name is missing`);
      const { m, d } = monthDay(f.date, `fixed[${i}].date`);
      for (const y of years) if (d <= daysInMonth(y, m)) this.addClosed(daysFromCivil(y, m, d), f.name);
    });
    (table.fixedHalfDays ?? []).forEach((f, i) => {
      if (typeof f?.name !== "string" || f.name === "") invalid(`fixedHalfDays[${i}].name is missing`);
      if (typeof f.from !== "string" || !TIME_RE.test(f.from)) invalid(`fixedHalfDays[${i}].from is not HH:mm`);
      const { m, d } = monthDay(f.date, `fixedHalfDays[${i}].date`);
      for (const y of years) if (d <= daysInMonth(y, m)) this.addHalf(daysFromCivil(y, m, d), f.from, f.name);
    });
    for (const [key, r] of entries) {
      const where = `years.${key}`;
      if (!r || typeof r !== "object") invalid(`${where} is not an object`);
      this.addHalf(tableDay(r.ramazanArife, `${where}.ramazanArife`), ARIFE_FROM, "Ramazan Bayramı arifesi");
      dayList(r.ramazan, `${where}.ramazan`).forEach((d, i) => this.addClosed(d, `Ramazan Bayramı (${i + 1}. gün)`));
      this.addHalf(tableDay(r.kurbanArife, `${where}.kurbanArife`), ARIFE_FROM, "Kurban Bayramı arifesi");
      dayList(r.kurban, `${where}.kurban`).forEach((d, i) => this.addClosed(d, `Kurban Bayramı (${i + 1}. gün)`));
    }
    this.knownYears = years;
  }

  private addClosed(day: number, name: string): void {
    const prev = this.closed.get(day);
    // Overlapping holidays are still one day off; keep both names.
    this.closed.set(day, prev === undefined || prev === name ? name : `${prev} / ${name}`);
  }

  private addHalf(day: number, from: string, name: string): void {
    this.halfDays.set(day, { from, name });
  }

  /** Years the table covers, ascending. */
  years(): number[] {
    return [...this.knownYears].sort((a, b) => a - b);
  }

  private checkYear(day: number): void {
    const { y } = civilFromDays(day);
    if (!this.knownYears.has(y)) throw new UnknownHolidayYearError(y);
  }

  private isOpen(day: number): boolean {
    this.checkYear(day);
    const weekday = (((day + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday; 0 = Sunday
    return weekday !== 0 && weekday !== 6 && !this.closed.has(day);
  }

  /** `day` is `YYYY-MM-DD` (an Istanbul date). */
  isBusinessDay(day: string): boolean {
    return this.isOpen(parseDay(day));
  }

  /** The official full-day holiday on `day`, or null (weekends and half days are not holidays). */
  holidayName(day: string): string | null {
    const n = parseDay(day);
    this.checkYear(n);
    return this.closed.get(n) ?? null;
  }

  /** The half-day holiday on `day` (off from `from`, Istanbul time), or null; a full holiday on the same date supersedes it. */
  halfDay(day: string): { from: string; name: string } | null {
    const n = parseDay(day);
    this.checkYear(n);
    if (this.closed.has(n)) return null;
    return this.halfDays.get(n) ?? null;
  }

  private advance(day: number, n: number): number {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`Business day count must be a non-negative integer, got ${n}`);
    let d = day;
    for (let left = n; left > 0; ) {
      d += 1;
      if (this.isOpen(d)) left -= 1;
    }
    return d;
  }

  /** The same Istanbul wall-clock time, `n` business days after the Istanbul date of `from` (that date itself is not counted). */
  addBusinessDays(from: Date, n: number): Date {
    const wall = toIstanbulWall(from);
    const day = Math.floor(wall / DAY);
    const target = this.advance(day, n) * DAY + (wall - day * DAY);
    // Only a pre-2016 spring-forward gap has no such wall time; the +2 offset lands just after the gap.
    return fromIstanbulWall(target) ?? new Date(target - 2 * 3_600_000);
  }

  /**
   * The end (23:59:59.999 Istanbul) of the `businessDays`-th business day after the Istanbul date of
   * `receivedAt`; the day of receipt is not counted.
   */
  deadline(receivedAt: Date, businessDays = 3): Date {
    const day = Math.floor(toIstanbulWall(receivedAt) / DAY);
    const end = (this.advance(day, businessDays) + 1) * DAY - 1;
    return fromIstanbulWall(end) ?? new Date(end - 2 * 3_600_000);
  }

  /**
   * The start (00:00 Istanbul) of the oldest Istanbul day whose movements' deadline (`businessDays`
   * after that day) has not passed at `now`, looking back at most `maxDays` days. A day whose
   * deadline falls in a year missing from the table counts as not passed (its deadline is unknown).
   */
  oldestOpenDay(now: Date, businessDays = 3, maxDays = 14): Date {
    const dayStart = (day: number) => fromIstanbulWall(day * DAY) ?? new Date(day * DAY - 3 * 3_600_000);
    let day = Math.floor(toIstanbulWall(now) / DAY);
    for (let k = 0; k < maxDays; k++) {
      try {
        if (this.deadline(dayStart(day - 1), businessDays).getTime() < now.getTime()) break;
      } catch (err) {
        if (!(err instanceof UnknownHolidayYearError)) throw err;
      }
      day--;
    }
    return dayStart(day);
  }

  /** Whether `at` is no later than deadline(from, n). */
  isWithinBusinessDays(from: Date, at: Date, n: number): boolean {
    const fromDay = Math.floor(toIstanbulWall(from) / DAY);
    const atDay = Math.floor(toIstanbulWall(at) / DAY);
    // n business days span at least n calendar days, so this holds whatever the holidays (and needs no table).
    if (Number.isInteger(n) && n >= 0 && atDay <= fromDay + n) return true;
    return at.getTime() <= this.deadline(from, n).getTime();
  }
}
