import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { addressUnfit } from "./consent-rules";
import { addressMessages, maskAddress, redactAddresses, normalizeEmail, normalizePhone, normalizePhoneByLibrary, normalizeRecipient } from "./address";

const calls = vi.hoisted(() => ({ parse: 0 }));
vi.mock("libphonenumber-js/max", async (importOriginal) => {
  const actual = await importOriginal<typeof import("libphonenumber-js/max")>();
  return {
    ...actual,
    parsePhoneNumberFromString: (...args: Parameters<typeof actual.parsePhoneNumberFromString>) => {
      calls.parse++;
      return actual.parsePhoneNumberFromString(...args);
    },
  };
});

beforeEach(() => {
  calls.parse = 0;
});

const H120 = { ok: false, code: "H120", message: "Alıcı (recipient) kabul edilemedi. Geçerli bir eposta adresi giriniz." };
const H121 = {
  ok: false,
  code: "H121",
  message: "Alıcı (recipient) için E164 uluslararası([+][country code][area code][local phone number]) formatına uygun bir telefon numarası girilmelidir. (örn. +905992000000)",
};
const H122 = {
  ok: false,
  code: "H122",
  message:
    "Alıcı (recipient) için E164 uluslararası ([+][country code][area code][local phone number]) formatına uygun bir telefon numarası (örn. +905992000000) ya da geçerli bir e-posta adresi girilmelidir.",
};
const H160 = { ok: false, code: "H160", message: "Alıcı için telefon numaraları 15 karakterden uzun olmamalıdır." };

const mobile = (value: string) => ({ ok: true, kind: "phone", value, phoneKind: "mobile" });
const fixed = (value: string) => ({ ok: true, kind: "phone", value, phoneKind: "fixed" });
const other = (value: string) => ({ ok: true, kind: "phone", value, phoneKind: "other" });
const email = (value: string) => ({ ok: true, kind: "email", value });

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}
const digits = (rnd: () => number, n: number): string => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join("");

describe("addressMessages", () => {
  it("carries the İYS error texts", () => {
    expect(addressMessages).toEqual({ H120: H120.message, H121: H121.message, H122: H122.message, H160: H160.message });
  });
});

describe("normalizePhone", () => {
  it.each([
    ["+905321234567"],
    ["0532 123 45 67"],
    ["+90 532 123 45 67"],
    ["905321234567"],
    ["5321234567"],
    ["05321234567"],
    ["00905321234567"],
    ["0090 532 123 45 67"],
    ["0 (532) 123-45-67"],
    ["(0532) 123 45 67"],
    ["+90 (532) 123 45 67"],
    ["+90-532-123-45-67"],
    ["+90.532.123.45.67"],
    ["0532/123 45 67"],
    ["532 123 45 67"],
    ["+90 532 1234567"],
    ["  +905321234567  "],
    ["0532\u00A0123\u00A045\u00A067"],
    ["0532\u202F123\u202F45\u202F67"],
    ["0532\t123\t45\t67"],
    ["\t0532 123 45 67\n"],
    ["0532\u200B1234567"],
    ["+90 532 123 45 67\uFEFF"],
    ["0532–123–45–67"],
  ])("normalises %j to +905321234567 as a mobile", (input) => {
    expect(normalizePhone(input)).toEqual(mobile("+905321234567"));
  });

  it.each([["+9005321234567"], ["+90 0532 123 45 67"], ["+90 (0532) 123 45 67"], ["009005321234567"], ["0090 0532 123 45 67"], ["9005321234567"]])(
    "strips the trunk 0 after the country code in %j",
    (input) => {
      expect(normalizePhone(input)).toEqual(mobile("+905321234567"));
    },
  );

  it.each([
    ["0212 555 12 12", "+902125551212"],
    ["+90 312 555 12 12", "+903125551212"],
    ["(0216) 555 12 12", "+902165551212"],
    ["2325551212", "+902325551212"],
  ])("accepts the fixed line %j as %s", (input, value) => {
    expect(normalizePhone(input)).toEqual(fixed(value));
  });

  it.each([
    ["0850 123 45 67", "+908501234567"],
    ["0800 123 45 67", "+908001234567"],
    ["444 1 234", "+904441234"],
    ["+90 512 123 45 67", "+905121234567"],
  ])("accepts the Turkish non-geographic number %j as %s, callable only (kind fixed: no SMS)", (input, value) => {
    expect(normalizePhone(input)).toEqual(fixed(value));
  });

  it.each([
    ["+44 7911 123456", mobile("+447911123456")],
    ["0044 7911 123456", mobile("+447911123456")],
    ["+33 6 12 34 56 78", mobile("+33612345678")],
    ["+49 30 1234567", fixed("+49301234567")],
    ["+1 201 555 0123", other("+12015550123")],
  ])("accepts the foreign number %j in E.164", (input, result) => {
    expect(normalizePhone(input)).toEqual(result);
  });

  it("classifies the less common Turkish mobile ranges through the library", () => {
    expect(normalizePhone("+90 561 611 2345")).toEqual(mobile("+905616112345"));
    expect(normalizePhone("0582 212 34 56")).toEqual(mobile("+905822123456"));
  });

  it.each([
    [""],
    ["   "],
    ["abc"],
    ["0532 123 45 6"],
    ["0532 123 45 678"],
    ["532123456"],
    ["1234"],
    ["0000000000"],
    ["+0 532 123 45 67"],
    ["+90532123456789"],
    ["+90 532 123 45 67 ext 12"],
    ["+905321234567x"],
    ["05321234567#"],
    ["++905321234567"],
    ["+90+5321234567"],
    ["90+5321234567"],
    ["+90 5321234567 / 68"],
    ["+905992000000"],
    ["+44 1234"],
    ["٠٥٣٢١٢٣٤٥٦٧"],
    ["０５３２１２３４５６７"],
    ["447911123456"],
    ["ayse@example.com"],
  ])("rejects %j with H121", (input) => {
    expect(normalizePhone(input)).toEqual(H121);
  });

  // The specification's own example (9055436100000000 → H160), and a valid 15-digit foreign number:
  // İYS counts the characters of what it is sent, the + included.
  it.each([["+9053212345678901"], ["0090532123456789012"], ["+1234567890123456"], ["0532 123 45 67 89 01 23"], ["9055436100000000"], ["+436742250674983"], ["00436742250674983"]])(
    "rejects %j, longer than 15 characters as İYS gets it, with H160",
    (input) => {
      expect(normalizePhone(input)).toEqual(H160);
    },
  );

  it("never outputs a +900 prefix for any accepted spelling", () => {
    const rnd = lcg(3);
    for (let i = 0; i < 500; i++) {
      const n = `53${digits(rnd, 8)}`;
      for (const s of [`+900${n}`, `0090 0${n}`, `900${n}`, `+90 (0${n.slice(0, 3)}) ${n.slice(3)}`]) {
        const r = normalizePhone(s);
        expect(r.ok && r.value, s).toBe(`+90${n}`);
      }
    }
  });

  it("answers canonical Turkish mobiles without calling the library", () => {
    expect(normalizePhone("+905321234567")).toEqual(mobile("+905321234567"));
    expect(normalizePhone("+905051234567")).toEqual(mobile("+905051234567"));
    expect(calls.parse).toBe(0);
  });

  it("answers the national spellings of Turkish mobiles without calling the library", () => {
    for (const s of ["05321234567", "0532 123 45 67", "(0532) 123-45-67", "5321234567", "+90 532 123 45 67", "0090 532 123 4567"]) {
      expect(normalizePhone(s), s).toEqual(mobile("+905321234567"));
    }
    expect(calls.parse).toBe(0);
  });

  it("uses the library for every other spelling", () => {
    normalizePhone("0212 123 45 67");
    expect(calls.parse).toBe(1);
  });

  it("gives the same answer on the fast paths as the library alone for every four-digit prefix in many spellings", () => {
    const rnd = lcg(7);
    const disagreements: string[] = [];
    let fast = 0;
    let total = 0;
    for (let p = 0; p < 10_000; p++) {
      // Ten digits (a national number), and one too few or too many.
      const m = `${String(p).padStart(4, "0")}${digits(rnd, 6)}`;
      for (const national of [m, m.slice(1), `${m}${digits(rnd, 1)}`]) {
        const [a, b, c, d] = [national.slice(0, 3), national.slice(3, 6), national.slice(6, 8), national.slice(8)];
        for (const s of [
          `0${national}`,
          national,
          `0${a} ${b} ${c} ${d}`,
          `(0${a}) ${b}-${c}-${d}`,
          `${a}.${b}.${c}${d}`,
          `+90${national}`,
          `+90 ${a} ${b} ${c} ${d}`,
          `90${national}`,
          `0090${national}`,
          `+90 (0${a}) ${b}${c}${d}`,
        ]) {
          calls.parse = 0;
          const r = normalizePhone(s);
          if (calls.parse === 0) fast++;
          total++;
          const expected = normalizePhoneByLibrary(s);
          if (JSON.stringify(r) !== JSON.stringify(expected)) disagreements.push(s);
        }
      }
    }
    expect(disagreements).toEqual([]);
    // Every spelling of a ten-digit number in the main mobile ranges (about half of the 5XXX prefixes) took a fast path.
    expect(fast).toBeGreaterThan(5_000);
    expect(fast).toBeLessThan(total / 10);
  });

  it("gives the same answer on the fast path as the library for every four-digit mobile prefix", () => {
    const rnd = lcg(99);
    let fast = 0;
    const disagreements: string[] = [];
    for (let p = 0; p < 10_000; p++) {
      for (let k = 0; k < 3; k++) {
        const s = `+905${String(p).padStart(4, "0")}${digits(rnd, 5)}`;
        calls.parse = 0;
        const r = normalizePhone(s);
        const lib = parsePhoneNumberFromString(s, "TR");
        const type = lib?.isValid() ? lib.getType() : undefined;
        const expected = !lib?.isValid()
          ? H121
          : { ok: true, kind: "phone", value: lib.number, phoneKind: type === "MOBILE" ? "mobile" : "fixed" }; // every +90 non-mobile is callable only
        if (calls.parse === 1) fast++;
        if (JSON.stringify(r) !== JSON.stringify(expected)) disagreements.push(s);
      }
    }
    expect(disagreements).toEqual([]);
    // Most canonical inputs in the allocated ranges must have taken the fast path (one call is the test's own).
    expect(fast).toBeGreaterThan(10_000);
  });

});

describe("normalizeEmail", () => {
  it.each([
    ["ayse@example.com", "ayse@example.com"],
    ["Ayse.Yilmaz@Example.COM", "ayse.yilmaz@example.com"],
    ["  ayse@example.com\t", "ayse@example.com"],
    ["\u00A0ayse@example.com\u00A0", "ayse@example.com"],
    ["AYSE+Kampanya@EXAMPLE.com.tr", "ayse+kampanya@example.com.tr"],
    ["a.b.c+tag@sub.example.com.tr", "a.b.c+tag@sub.example.com.tr"],
    ["x@yz.co", "x@yz.co"],
    ["x@y.z.co", "x@y.z.co"],
    ["user_name-1@example-domain.org", "user_name-1@example-domain.org"],
    ["1234@123.example.com", "1234@123.example.com"],
    ["a@xn--sirket-3ya.com.tr", "a@xn--sirket-3ya.com.tr"],
    ["a@example.xn--p1ai", "a@example.xn--p1ai"],
  ])("accepts %j as %j", (input, value) => {
    expect(normalizeEmail(input)).toEqual(email(value));
  });

  it("keeps +tags so that a+x@bc.com and a@bc.com stay distinct", () => {
    const tagged = normalizeEmail("a+x@bc.com");
    const plain = normalizeEmail("a@bc.com");
    expect(tagged).toEqual(email("a+x@bc.com"));
    expect(plain).toEqual(email("a@bc.com"));
  });

  it("rejects an address shorter than İYS's template {1}@{2}.{2} before its top-level label (rule 4)", () => {
    expect(normalizeEmail("a@b.com")).toEqual(H120);
    expect(normalizeEmail("ayse@x.com.")).toEqual(H120);
    expect(normalizeEmail("ayse@x.com")).toEqual(H120);
    expect(normalizeEmail("ayse@xy.com")).toEqual(email("ayse@xy.com"));
  });

  it("keeps dots in the local part", () => {
    expect(normalizeEmail("a.y.s.e@gmail.com")).toEqual(email("a.y.s.e@gmail.com"));
  });

  it.each([
    ["ayşe@example.com"],
    ["AYŞE@example.com"],
    ["çiçek@example.com"],
    ["ÇİÇEK@example.com"],
    ["dağ@example.com"],
    ["DAĞ@example.com"],
    ["ılgın@example.com"],
    ["IŞIK@example.com"],
    ["kılıç@example.com"],
    ["İlker@example.com"],
    ["i\u0307lker@example.com"],
    ["özgür@example.com"],
    ["ÖZGÜR@example.com"],
    ["user@şirket.com.tr"],
    ["user@example.com.tü"],
    ["josé@example.com"],
    ["user@exämple.de"],
    ["ayse@example.com\u200B"],
  ])("rejects the non-ASCII address %j with H120", (input) => {
    expect(normalizeEmail(input)).toEqual(H120);
  });

  it("accepts exactly 265 characters and rejects 266", () => {
    const domain = `${"x".repeat(63)}.${"x".repeat(63)}.${"x".repeat(63)}.${"x".repeat(57)}.com`;
    expect(domain).toHaveLength(253);
    expect(normalizeEmail(`${"a".repeat(11)}@${domain}`)).toEqual(email(`${"a".repeat(11)}@${domain}`));
    expect(normalizeEmail(`${"a".repeat(12)}@${domain}`)).toEqual(H120);
  });

  it("rejects addresses shorter than 6 characters", () => {
    expect(normalizeEmail("a@b.c")).toEqual(H120);
    expect(normalizeEmail(" a@b.c ")).toEqual(H120);
  });

  it.each([
    [""],
    ["      "],
    ["no-at.example.com"],
    ["@example.com"],
    ["ayse@"],
    ["ayse@@example.com"],
    ["ayse@b@example.com"],
    ["ayse @example.com"],
    ["ay se@example.com"],
    ["ayse@exa mple.com"],
    ["ayse\t@example.com"],
    ["ayse\u00A0@example.com"],
    ["ayse@example"],
    ["ayse@.example.com"],
    ["ayse@example..com"],
    ["ayse@example.com."],
    ["ayse@-example.com"],
    ["ayse@example-.com"],
    ["ayse@exa_mple.com"],
    ["ayse@example.c"],
    ["ayse@example.c0m"],
    ["ayse@example.123"],
    ["ayse@[192.168.0.1]"],
    ["ayse@192.168.0.1"],
    [".ayse@example.com"],
    ["ayse.@example.com"],
    ["ay..se@example.com"],
    ['"ayse"@example.com'],
    ["ayse(yorum)@example.com"],
    ["ayse,yilmaz@example.com"],
    ["<ayse@example.com>"],
    ["Ayşe Yılmaz <ayse@example.com>"],
    ["mailto:ayse@example.com"],
    ["ayse@example.com;veli@example.com"],
    [`ayse@${"x".repeat(64)}.com`],
    // İYS: no special characters before the @ but + (RFC 5322 would take these).
    ["o'brien@example.ie"],
    ["a{b}@example.com"],
    ["ayse!@example.com"],
    ["ay%se@example.com"],
    ["ay&se@example.com"],
    ["ay/se@example.com"],
    ["ay=se@example.com"],
    ["ay?se@example.com"],
    ["ay^se@example.com"],
    ["ay*se@example.com"],
    ["ay#se@example.com"],
    ["ay$se@example.com"],
    ["ay|se@example.com"],
    ["ay~se@example.com"],
    ["ay`se@example.com"],
  ])("rejects %j with H120", (input) => {
    expect(normalizeEmail(input)).toEqual(H120);
  });
});

describe("normalizeRecipient", () => {
  it("treats an input with @ as an e-mail address", () => {
    expect(normalizeRecipient(" Ayse@Example.com ")).toEqual(email("ayse@example.com"));
  });

  it("reports an invalid e-mail address with H120", () => {
    expect(normalizeRecipient("ayşe@example.com")).toEqual(H120);
    expect(normalizeRecipient("0532@1234567")).toEqual(H120);
  });

  it("treats an input without @ as a phone number", () => {
    expect(normalizeRecipient("0532 123 45 67")).toEqual(mobile("+905321234567"));
    expect(normalizeRecipient("+905321234567")).toEqual(mobile("+905321234567"));
    expect(normalizeRecipient("0212 555 12 12")).toEqual(fixed("+902125551212"));
  });

  it("reports an invalid phone number with H121", () => {
    expect(normalizeRecipient("0532 123")).toEqual(H121);
    expect(normalizeRecipient("+905992000000")).toEqual(H121);
  });

  it("reports an overlong phone number with H160", () => {
    expect(normalizeRecipient("+9053212345678901")).toEqual(H160);
  });

  it.each([[""], ["   "], ["garbage"], ["ayse.example.com"], ["+90 532 ABC 45 67"], ["05321234567 (cep)"], ["---"], ["()"], ["+"]])(
    "rejects %j, neither a phone number nor an e-mail address, with H122",
    (input) => {
      expect(normalizeRecipient(input)).toEqual(H122);
    },
  );
});

describe("maskAddress", () => {
  it("keeps the country code, the operator prefix and the last two digits of a phone", () => {
    expect(maskAddress("+905321234567")).toBe("+90532*****67");
  });

  it("masks a foreign phone the same way", () => {
    expect(maskAddress("+447911123456")).toBe("+44791*****56");
  });

  it("masks a short phone number, five digits of it at least", () => {
    expect(maskAddress("+904441234")).toBe("+90*****34");
  });

  it("hides five digits of a number however it is written: without +, with a 0, national", () => {
    expect(maskAddress("905321112233")).toBe("90532*****33");
    expect(maskAddress("05321112233")).toBe("0532*****33");
    expect(maskAddress("5321112233")).toBe("532*****33");
  });

  it("masks everything of a value too short to keep a prefix", () => {
    expect(maskAddress("12345")).toBe("*****");
    expect(maskAddress("")).toBe("");
  });

  it("keeps the first letter of the local part and the domain of an e-mail", () => {
    expect(maskAddress("ayse.yilmaz@example.com")).toBe("a***@example.com");
  });

  it("does not reveal the length of the local part", () => {
    expect(maskAddress("a@b.com")).toBe("a***@b.com");
    expect(maskAddress("abcdefghijklmnop@b.com")).toBe("a***@b.com");
  });

  it("masks a malformed e-mail without a local part", () => {
    expect(maskAddress("@example.com")).toBe("***@example.com");
  });
});

describe("redactAddresses", () => {
  it("masks the addresses providers quote in their errors, leaving codes, dates and times", () => {
    expect(redactAddresses("The 'To' number +905329990011 is not a valid phone number. (21211)")).toBe(
      "The 'To' number +90532*****11 is not a valid phone number. (21211)",
    );
    expect(redactAddresses("450 4.2.0 <Gizli.Kisi@ornek.com.tr>: Recipient address rejected")).toBe("450 4.2.0 <g***@ornek.com.tr>: Recipient address rejected");
    expect(redactAddresses("0532-123-45-67 / 0532 123 45 67")).not.toMatch(/123/);
    expect(redactAddresses("vonage status 3: Invalid to number 905321112233")).toBe("vonage status 3: Invalid to number 90532*****33");
    expect(redactAddresses("GET /x?recipient=ayse.pii%40example.com failed")).toBe("GET /x?recipient=a***@example.com failed");
    expect(redactAddresses("HTTP 503 after 30000 ms at 2026-11-25 10:00:00 (H174)")).toBe("HTTP 503 after 30000 ms at 2026-11-25 10:00:00 (H174)");
  });
});

describe("Turkish numbers that are not mobiles", () => {
  it.each(["0850 222 06 00", "444 1 234", "0800 123 45 67", "0900 123 45 67", "0512 123 45 67"])("%j may be called but takes no SMS", (n) => {
    const r = normalizePhone(n);
    expect(r).toMatchObject({ ok: true, phoneKind: "fixed" });
    expect(r.ok && addressUnfit("MESAJ", "phone", r.phoneKind)).toBe("H464");
    expect(r.ok && addressUnfit("ARAMA", "phone", r.phoneKind)).toBeNull();
  });
});

