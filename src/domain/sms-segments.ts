/**
 * SMS segment counting (3GPP TS 23.038 / 23.040) for checking reply templates before they are sent.
 */

export type SmsEncoding = "GSM-7" | "UCS-2";

export interface SegmentInfo {
  encoding: SmsEncoding;
  /** True when the Turkish single shift table is needed (and allowed) to send the text as GSM-7. */
  turkishShift: boolean;
  /** Septets for GSM-7 (shifted and extension characters count 2), UTF-16 code units for UCS-2. */
  units: number;
  segments: number;
  /** Capacity of one segment in units: the single-message capacity when `segments` is 1. */
  perSegment: number;
  /** Units left in the last segment. */
  remaining: number;
}

export interface SegmentOptions {
  /** The provider can send with the Turkish National Language Single Shift Table (§A.2.1). */
  turkishShift?: boolean;
  /** Characters the operator appends to the message (Turkish operators add a 5-character sender code, once). */
  reservedChars?: number;
}

// 3GPP TS 23.038 §6.2.1 default alphabet in code order, without 0x1B (the escape to the shift table).
const GSM_DEFAULT_ALPHABET =
  "@£$¥èéùìòÇ\nØø\rÅå" +
  "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ" +
  " !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§" +
  "¿abcdefghijklmnopqrstuvwxyzäöñüà";
// §6.2.1.1 extension table; also present in the Turkish single shift table.
const GSM_EXTENSION = "\f^{}\\[~]|€";
// §A.2.1 Turkish single shift table, beyond the characters it shares with the extension table.
const TURKISH_SHIFT_ONLY = "ĞİŞçğış";

const GSM_DEFAULT = new Set(Array.from(GSM_DEFAULT_ALPHABET, (c) => c.charCodeAt(0)));
const GSM_ESCAPED = new Set(Array.from(GSM_EXTENSION, (c) => c.charCodeAt(0)));
const TURKISH_ESCAPED = new Set(Array.from(TURKISH_SHIFT_ONLY, (c) => c.charCodeAt(0)));

// Capacities in units before `reservedChars`. A segment is 140 octets: 160 septets or 70 UCS-2
// units. Concatenation takes a 6-octet UDH (UDHL + 5-octet IE); the single shift IE takes 3 octets
// more, and the UDH is padded to a septet boundary.
const GSM_SINGLE = 160;
const GSM_CONCAT = 153;
const GSM_SHIFT_SINGLE = 155;
const GSM_SHIFT_CONCAT = 149;
const UCS2_SINGLE = 70;
const UCS2_CONCAT = 67;

type Classification = { encoding: "GSM-7"; turkishShift: boolean; units: number } | { encoding: "UCS-2"; units: number };

function classify(text: string, allowTurkishShift: boolean): Classification {
  let septets = 0;
  let needsShift = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (GSM_DEFAULT.has(c)) septets += 1;
    else if (GSM_ESCAPED.has(c)) septets += 2;
    else if (allowTurkishShift && TURKISH_ESCAPED.has(c)) {
      septets += 2;
      needsShift = true;
    } else return { encoding: "UCS-2", units: text.length };
  }
  return { encoding: "GSM-7", turkishShift: needsShift, units: septets };
}

function gsmCost(c: number): number {
  return GSM_DEFAULT.has(c) ? 1 : 2;
}

function ucs2Cost(codePoint: number): number {
  return codePoint > 0xffff ? 2 : 1;
}

/**
 * Splits the text into parts of `perPart` units without cutting a character in two (an escape
 * sequence or a surrogate pair moves whole to the next part). Returns the parts and the units in
 * the last one.
 */
function walkParts(text: string, perPart: number, cost: (codePoint: number) => number): { parts: number; lastUsed: number } {
  let parts = 1;
  let used = 0;
  for (const ch of text) {
    const units = cost(ch.codePointAt(0) ?? 0);
    if (used + units > perPart) {
      parts += 1;
      used = 0;
    }
    used += units;
  }
  return { parts, lastUsed: used };
}

function reservedOf(opts: SegmentOptions | undefined): number {
  const reserved = opts?.reservedChars ?? 0;
  if (!Number.isInteger(reserved) || reserved < 0 || reserved > UCS2_CONCAT - 2) {
    throw new RangeError(`reservedChars must be an integer from 0 to ${UCS2_CONCAT - 2}, got ${reserved}`);
  }
  return reserved;
}

/**
 * Counts the segments a text takes. GSM-7 when every character is in the default alphabet or its
 * extension table, or — with `turkishShift` — in the Turkish single shift table (used only when the
 * text needs it, since its header costs 5 or 4 septets per segment); otherwise UCS-2.
 *
 * The empty text counts as 1 segment of 0 units: sending it still costs one message.
 */
export function countSegments(text: string, opts?: SegmentOptions): SegmentInfo {
  const reserved = reservedOf(opts);
  const found = classify(text, opts?.turkishShift ?? false);

  let single: number;
  let concat: number;
  let cost: (codePoint: number) => number;
  if (found.encoding === "GSM-7") {
    single = found.turkishShift ? GSM_SHIFT_SINGLE : GSM_SINGLE;
    concat = found.turkishShift ? GSM_SHIFT_CONCAT : GSM_CONCAT;
    cost = gsmCost;
  } else {
    single = UCS2_SINGLE;
    concat = UCS2_CONCAT;
    cost = ucs2Cost;
  }
  const turkishShift = found.encoding === "GSM-7" && found.turkishShift;

  // The operator's code goes at the end of the message (digits: one unit each, in any encoding).
  if (found.units + reserved <= single) {
    return { encoding: found.encoding, turkishShift, units: found.units, segments: 1, perSegment: single, remaining: single - found.units - reserved };
  }
  const { parts, lastUsed } = walkParts(text + "0".repeat(reserved), concat, cost);
  return { encoding: found.encoding, turkishShift, units: found.units, segments: parts, perSegment: concat, remaining: concat - lastUsed };
}

/** Whether the text fits in at most `max` segments. */
export function fitsSegments(text: string, max: number, opts?: SegmentOptions): boolean {
  return countSegments(text, opts).segments <= max;
}
