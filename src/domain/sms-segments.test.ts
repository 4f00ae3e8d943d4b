import { describe, expect, it } from "vitest";
import { countSegments, fitsSegments } from "./sms-segments";

const a = (n: number): string => "a".repeat(n);

// 3GPP TS 23.038 §6.2.1, code points in code order 0x00–0x7F; 0x1B is the escape, not a character.
const DEFAULT_ALPHABET_CODE_POINTS = [
  0x40, 0xa3, 0x24, 0xa5, 0xe8, 0xe9, 0xf9, 0xec, 0xf2, 0xc7, 0x0a, 0xd8, 0xf8, 0x0d, 0xc5, 0xe5,
  0x394, 0x5f, 0x3a6, 0x393, 0x39b, 0x3a9, 0x3a0, 0x3a8, 0x3a3, 0x398, 0x39e, 0xc6, 0xe6, 0xdf, 0xc9,
  0x20, 0x21, 0x22, 0x23, 0xa4, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
  0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
  0xa1, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
  0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0xc4, 0xd6, 0xd1, 0xdc, 0xa7,
  0xbf, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
  0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0xe4, 0xf6, 0xf1, 0xfc, 0xe0,
];
const EXTENSION_CHARS = ["\f", "^", "{", "}", "\\", "[", "~", "]", "|", "€"];
const TURKISH_SHIFT_CHARS = ["Ğ", "İ", "Ş", "ç", "ğ", "ı", "ş"];
const CONFIRMATION = "MIGROS markasından SMS almayı reddettiniz. Kayıt no: 12345";

describe("countSegments: GSM-7 alphabet", () => {
  it("counts every character of the default alphabet as one septet", () => {
    expect(DEFAULT_ALPHABET_CODE_POINTS).toHaveLength(127);
    const text = String.fromCodePoint(...DEFAULT_ALPHABET_CODE_POINTS);
    expect(countSegments(text)).toMatchObject({ encoding: "GSM-7", turkishShift: false, units: 127, segments: 1 });
  });

  it.each(EXTENSION_CHARS)("counts the extension character %j as two septets", (c) => {
    expect(countSegments(c)).toMatchObject({ encoding: "GSM-7", units: 2, segments: 1 });
  });

  it("keeps Ç, Ö, Ü, ö and ü in the default alphabet", () => {
    expect(countSegments("ÇÖÜöü")).toMatchObject({ encoding: "GSM-7", turkishShift: false, units: 5 });
  });

  it("counts CR LF as two septets", () => {
    expect(countSegments("a\r\nb")).toMatchObject({ encoding: "GSM-7", units: 4 });
  });

  it.each([
    ["backtick", "`"],
    ["lone escape control", "\u001b"],
    ["decomposed é", "e\u0301"],
    ["â", "â"],
    ["curly apostrophe", "\u2019"],
  ])("sends text with a %s as UCS-2", (_name, c) => {
    expect(countSegments(`RET ${c}`)).toMatchObject({ encoding: "UCS-2", units: 4 + c.length });
  });
});

describe("countSegments: GSM-7 boundaries", () => {
  it("counts the empty text as one segment of zero units", () => {
    expect(countSegments("")).toEqual({ encoding: "GSM-7", turkishShift: false, units: 0, segments: 1, perSegment: 160, remaining: 160 });
  });

  it("fits 160 characters in one segment", () => {
    expect(countSegments(a(160))).toEqual({ encoding: "GSM-7", turkishShift: false, units: 160, segments: 1, perSegment: 160, remaining: 0 });
  });

  it("splits 161 characters into 153 + 8", () => {
    expect(countSegments(a(161))).toEqual({ encoding: "GSM-7", turkishShift: false, units: 161, segments: 2, perSegment: 153, remaining: 145 });
  });

  it("fits 306 characters in two segments and needs three for 307", () => {
    expect(countSegments(a(306))).toMatchObject({ segments: 2, remaining: 0 });
    expect(countSegments(a(307))).toMatchObject({ segments: 3, perSegment: 153, remaining: 152 });
  });

  it("counts extension characters double towards the single-segment limit", () => {
    expect(countSegments("{".repeat(80))).toMatchObject({ units: 160, segments: 1, remaining: 0 });
    expect(countSegments("{".repeat(80) + "a")).toMatchObject({ units: 161, segments: 2 });
    expect(countSegments(a(159) + "€")).toMatchObject({ units: 161, segments: 2 });
  });

  it("moves a € that would straddle a segment boundary to the next segment", () => {
    // 152 + 2 + 152 = 306 septets would fill two parts of 153, but the € cannot be split.
    expect(countSegments(a(152) + "€" + a(152))).toMatchObject({ units: 306, segments: 3, remaining: 152 });
    expect(countSegments(a(151) + "€" + a(153))).toMatchObject({ units: 306, segments: 2, remaining: 0 });
  });
});

describe("countSegments: Turkish letters", () => {
  it("sends ş as UCS-2 without the shift table", () => {
    expect(countSegments("ş")).toMatchObject({ encoding: "UCS-2", turkishShift: false, units: 1, perSegment: 70 });
  });

  it("applies the UCS-2 boundaries of 70 single and 67 concatenated", () => {
    expect(countSegments("ş" + a(69))).toMatchObject({ segments: 1, units: 70, remaining: 0 });
    expect(countSegments("ş" + a(70))).toMatchObject({ segments: 2, units: 71, perSegment: 67, remaining: 63 });
    expect(countSegments("ş" + a(133))).toMatchObject({ segments: 2, units: 134, remaining: 0 });
    expect(countSegments("ş" + a(134))).toMatchObject({ segments: 3, units: 135, remaining: 66 });
  });

  it.each(TURKISH_SHIFT_CHARS)("sends %j as UCS-2 without the shift table and as two shifted septets with it", (c) => {
    expect(countSegments(`RET ${c}`)).toMatchObject({ encoding: "UCS-2", turkishShift: false, units: 5 });
    expect(countSegments(`RET ${c}`, { turkishShift: true })).toMatchObject({ encoding: "GSM-7", turkishShift: true, units: 6 });
  });

  it("applies the shifted GSM-7 boundaries of 155 single and 149 concatenated", () => {
    const opts = { turkishShift: true };
    expect(countSegments("ş" + a(153), opts)).toEqual({ encoding: "GSM-7", turkishShift: true, units: 155, segments: 1, perSegment: 155, remaining: 0 });
    expect(countSegments("ş" + a(154), opts)).toEqual({ encoding: "GSM-7", turkishShift: true, units: 156, segments: 2, perSegment: 149, remaining: 142 });
    expect(countSegments("ş" + a(296), opts)).toMatchObject({ units: 298, segments: 2, remaining: 0 });
    expect(countSegments("ş" + a(297), opts)).toMatchObject({ units: 299, segments: 3 });
  });

  it("uses the shift table only when the text needs it", () => {
    expect(countSegments(a(160), { turkishShift: true })).toEqual({ encoding: "GSM-7", turkishShift: false, units: 160, segments: 1, perSegment: 160, remaining: 0 });
    expect(countSegments("{€}", { turkishShift: true })).toMatchObject({ turkishShift: false, perSegment: 160 });
  });

  it("counts the extension characters as two septets in shifted text too", () => {
    expect(countSegments("ı€{", { turkishShift: true })).toMatchObject({ encoding: "GSM-7", turkishShift: true, units: 6 });
  });

  it("falls back to UCS-2 when a character is in neither table, even with the shift table allowed", () => {
    expect(countSegments("ışık ł", { turkishShift: true })).toMatchObject({ encoding: "UCS-2", turkishShift: false, units: 6 });
  });

  it("moves a shifted character that would straddle a segment boundary to the next segment", () => {
    const opts = { turkishShift: true };
    expect(countSegments(a(148) + "ş" + a(148), opts)).toMatchObject({ units: 298, segments: 3, remaining: 148 });
    expect(countSegments(a(147) + "ş" + a(149), opts)).toMatchObject({ units: 298, segments: 2, remaining: 0 });
  });

  it("sends the Turkish refusal confirmation as one UCS-2 segment", () => {
    expect(countSegments(CONFIRMATION)).toEqual({ encoding: "UCS-2", turkishShift: false, units: 58, segments: 1, perSegment: 70, remaining: 12 });
  });

  it("sends the Turkish refusal confirmation as one shifted GSM-7 segment when the provider allows it", () => {
    // Three ı cost two septets each.
    expect(countSegments(CONFIRMATION, { turkishShift: true })).toEqual({
      encoding: "GSM-7",
      turkishShift: true,
      units: 61,
      segments: 1,
      perSegment: 155,
      remaining: 94,
    });
  });
});

describe("countSegments: UCS-2 surrogate pairs", () => {
  it("counts an emoji as two code units", () => {
    expect(countSegments("😀")).toMatchObject({ encoding: "UCS-2", units: 2, segments: 1 });
  });

  it("fits an emoji ending exactly at 70 code units in one segment", () => {
    expect(countSegments(a(68) + "😀")).toMatchObject({ units: 70, segments: 1, remaining: 0 });
    expect(countSegments(a(69) + "😀")).toMatchObject({ units: 71, segments: 2 });
  });

  it("moves an emoji that would straddle a segment boundary to the next segment", () => {
    expect(countSegments(a(66) + "😀" + a(65))).toMatchObject({ units: 133, segments: 2, remaining: 0 });
    expect(countSegments(a(66) + "😀" + a(66))).toMatchObject({ units: 134, segments: 3, remaining: 66 });
  });

  it("counts a lone surrogate as one code unit", () => {
    expect(countSegments("a\ud83d")).toMatchObject({ encoding: "UCS-2", units: 2, segments: 1 });
  });
});

describe("countSegments: reserved characters", () => {
  // The operator appends its code once, to the end of the message: one segment holds 155 of the
  // text's characters, two hold 301 (153 + 148), not 2 × 148.
  it("takes the operator's code once from a GSM-7 message", () => {
    const opts = { reservedChars: 5 };
    expect(countSegments(a(155), opts)).toMatchObject({ segments: 1, perSegment: 160, remaining: 0 });
    expect(countSegments(a(156), opts)).toMatchObject({ segments: 2, perSegment: 153, remaining: 145 });
    expect(countSegments(a(296), opts)).toMatchObject({ segments: 2, remaining: 5 });
    expect(countSegments(a(301), opts)).toMatchObject({ segments: 2, remaining: 0 });
    expect(countSegments(a(302), opts)).toMatchObject({ segments: 3 });
  });

  it("takes the operator's code once from a UCS-2 message", () => {
    const opts = { reservedChars: 5 };
    expect(countSegments("ş" + a(64), opts)).toMatchObject({ segments: 1, perSegment: 70, remaining: 0 });
    expect(countSegments("ş" + a(65), opts)).toMatchObject({ segments: 2, perSegment: 67, remaining: 63 });
    expect(countSegments("ş" + a(128), opts)).toMatchObject({ segments: 2, remaining: 0 });
    expect(countSegments("ş" + a(129), opts)).toMatchObject({ segments: 3 });
  });

  it("takes the operator's code once from a shifted GSM-7 message", () => {
    const opts = { reservedChars: 5, turkishShift: true };
    expect(countSegments("ş" + a(148), opts)).toMatchObject({ segments: 1, perSegment: 155, remaining: 0 });
    expect(countSegments("ş" + a(149), opts)).toMatchObject({ segments: 2, perSegment: 149 });
  });

  it("reports the empty text's remaining capacity net of the reservation", () => {
    expect(countSegments("", { reservedChars: 5 })).toMatchObject({ segments: 1, units: 0, remaining: 155 });
  });

  it.each([-1, 1.5, Number.NaN, 66])("rejects reservedChars %s", (reservedChars) => {
    expect(() => countSegments("a", { reservedChars })).toThrow(RangeError);
  });
});

describe("fitsSegments", () => {
  it("accepts a text within the limit and rejects one over it", () => {
    expect(fitsSegments(a(160), 1)).toBe(true);
    expect(fitsSegments(a(161), 1)).toBe(false);
    expect(fitsSegments(a(161), 2)).toBe(true);
  });

  it("takes the options into account", () => {
    expect(fitsSegments(a(160), 1, { reservedChars: 5 })).toBe(false);
    expect(fitsSegments("ş" + a(100), 1)).toBe(false);
    expect(fitsSegments("ş" + a(100), 1, { turkishShift: true })).toBe(true);
  });

  it("checks the Turkish confirmation against a one-segment budget", () => {
    expect(fitsSegments(CONFIRMATION, 1)).toBe(true);
    expect(fitsSegments(`${CONFIRMATION} Bilgi için YARDIM yazıp gönderin.`, 1)).toBe(false);
  });
});
