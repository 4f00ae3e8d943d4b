export interface Clock {
  now(): Date;
}

export const systemClock: Clock = {
  now: () => new Date(),
};

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Turkey's offset from UTC, all year since September 2016 (PERMANENT_UTC3_FROM). */
export const TURKEY_OFFSET = 3 * HOUR;

/** 2016-09-07 00:00 Istanbul: Turkey has been on UTC+3 all year from here on. */
const PERMANENT_UTC3_FROM = Date.UTC(2016, 8, 6, 21, 0, 0);
const PERMANENT_UTC3_FROM_WALL = PERMANENT_UTC3_FROM + TURKEY_OFFSET;

const H158 = "İzin tarihi yyyy-mm-dd hh:mm:ss formatında olmalıdır.";
const H158_OR_ISO = "İzin tarihi yyyy-mm-dd hh:mm:ss formatında (Türkiye saati) ya da saat dilimli ISO 8601 (2026-03-04T10:00:00+03:00, …Z) olmalıdır.";
const H157 = "Geçerli bir tarih girilmelidir.";

export type IysDateParse = { ok: true; date: Date } | { ok: false; code: "H158" | "H157"; message: string };

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil); avoids Date.UTC's 0–99 year quirk.
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

export function civilFromDays(days: number): { y: number; m: number; d: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: era * 400 + yoe + (m <= 2 ? 1 : 0), m, d };
}

export function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

let istanbulFormatter: Intl.DateTimeFormat | undefined;

function intlWallMs(t: number): number {
  istanbulFormatter ??= new Intl.DateTimeFormat("en-US", {
    timeZone: "Europe/Istanbul",
    era: "short",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
    hourCycle: "h23",
  });
  let y = 0;
  let mo = 0;
  let d = 0;
  let h = 0;
  let mi = 0;
  let s = 0;
  let bc = false;
  for (const p of istanbulFormatter.formatToParts(new Date(t))) {
    switch (p.type) {
      case "year": y = Number(p.value); break;
      case "month": mo = Number(p.value); break;
      case "day": d = Number(p.value); break;
      case "hour": h = Number(p.value); break;
      case "minute": mi = Number(p.value); break;
      case "second": s = Number(p.value); break;
      case "era": bc = p.value.startsWith("B"); break;
    }
  }
  if (bc) y = 1 - y;
  const msPart = ((t % SECOND) + SECOND) % SECOND;
  return daysFromCivil(y, mo, d) * DAY + h * HOUR + mi * MINUTE + s * SECOND + msPart;
}

/**
 * The instant's Istanbul wall clock, read as if it were UTC milliseconds
 * (so `Math.floor(wall / DAY)` is the Istanbul day number since 1970-01-01).
 */
export function toIstanbulWall(d: Date): number {
  const t = d.getTime();
  if (Number.isNaN(t)) throw new RangeError("Invalid date");
  return t >= PERMANENT_UTC3_FROM ? t + TURKEY_OFFSET : intlWallMs(t);
}

/**
 * The instant whose Istanbul wall clock reads `wall` (see toIstanbulWall), or null if that wall time
 * never existed (the skipped hour of a pre-2016 spring-forward). An ambiguous autumn hour resolves to
 * its first occurrence.
 */
export function fromIstanbulWall(wall: number): Date | null {
  if (wall >= PERMANENT_UTC3_FROM_WALL) return new Date(wall - TURKEY_OFFSET);
  // Turkey was on +3 (summer / since 2016) or +2 (winter) since 1985; older times (+4 DST, LMT) use the zone's own offset.
  for (const offset of [TURKEY_OFFSET, 2 * HOUR]) {
    if (intlWallMs(wall - offset) === wall) return new Date(wall - offset);
  }
  for (const guess of [wall - TURKEY_OFFSET, wall - 2 * HOUR]) {
    const t = wall - (intlWallMs(guess) - guess);
    if (intlWallMs(t) === wall) return new Date(t);
  }
  return null;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function formatDayNumber(days: number): string {
  const { y, m, d } = civilFromDays(days);
  const ys = y >= 0 && y < 10_000 ? String(y).padStart(4, "0") : String(y);
  return `${ys}-${pad2(m)}-${pad2(d)}`;
}

/** İYS wall time `YYYY-MM-DD HH:mm:ss` in Europe/Istanbul; sub-second precision is dropped. */
export function formatIysDate(d: Date): string {
  const wall = toIstanbulWall(d);
  const days = Math.floor(wall / DAY);
  const msOfDay = wall - days * DAY;
  const h = Math.floor(msOfDay / HOUR);
  const mi = Math.floor((msOfDay % HOUR) / MINUTE);
  const s = Math.floor((msOfDay % MINUTE) / SECOND);
  return `${formatDayNumber(days)} ${pad2(h)}:${pad2(mi)}:${pad2(s)}`;
}

/** `YYYY-MM-DD` of the Istanbul wall date. */
export function istanbulDay(d: Date): string {
  return formatDayNumber(Math.floor(toIstanbulWall(d) / DAY));
}

/** Minutes since Istanbul midnight (0–1439). */
export function istanbulMinutesOfDay(d: Date): number {
  const wall = toIstanbulWall(d);
  return Math.floor((wall - Math.floor(wall / DAY) * DAY) / MINUTE);
}

/** What parseIysDate reads: `YYYY-MM-DD HH:mm:ss`, ASCII digits. */
export const IYS_DATE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** The number written by the `length` ASCII digits of `s` from `from`, or -1 if any is not a digit. */
function digits(s: string, from: number, length: number): number {
  let v = 0;
  for (let i = from; i < from + length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):?(\d{2}))$/;

const h158 = (): IysDateParse => ({ ok: false, code: "H158", message: H158 });
const h157 = (): IysDateParse => ({ ok: false, code: "H157", message: H157 });

/** Wall ms of the given fields, or null if they do not name a real calendar date and time. */
function wallOf(y: number, mo: number, d: number, h: number, mi: number, s: number): number | null {
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return null;
  if (h > 23 || mi > 59 || s > 59) return null;
  return daysFromCivil(y, mo, d) * DAY + h * HOUR + mi * MINUTE + s * SECOND;
}

/** Strict İYS `YYYY-MM-DD HH:mm:ss`, read as Istanbul wall time. */
export function parseIysDate(s: string): IysDateParse {
  // IYS_DATE read by hand (an import reads a million of them): no match array, no substrings.
  if (s?.length !== 19 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 32 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return h158();
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  const h = digits(s, 11, 2);
  const mi = digits(s, 14, 2);
  const sec = digits(s, 17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0) return h158();
  const wall = wallOf(y, mo, d, h, mi, sec);
  if (wall === null) return h157();
  const date = fromIstanbulWall(wall);
  return date ? { ok: true, date } : h157();
}

function parseIsoDate(s: string): IysDateParse {
  const m = ISO_DATE.exec(s);
  if (!m) return h158();
  const wall = wallOf(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (wall === null) return h157();
  let offset = 0;
  if (m[8] !== "Z") {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return h157();
    offset = (m[9] === "-" ? -1 : 1) * (oh * HOUR + om * MINUTE);
  }
  // İYS dates have whole seconds; a fraction is dropped so that local ordering checks agree with İYS.
  return { ok: true, date: new Date(wall - offset) };
}

/** The İYS form, or ISO-8601 with an explicit offset or `Z` (fractional seconds are truncated). */
export function parseConsentDate(s: string): IysDateParse {
  const iys = parseIysDate(s);
  if (iys.ok || iys.code === "H157") return iys;
  const iso = parseIsoDate(s);
  // A time without an offset would be read in some zone by guess: say what is taken.
  return iso.ok || iso.code === "H157" ? iso : { ...iso, message: H158_OR_ISO };
}
