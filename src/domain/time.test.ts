import { describe, expect, it } from "vitest";
import {
  civilFromDays,
  daysFromCivil,
  daysInMonth,
  formatIysDate,
  fromIstanbulWall,
  IYS_DATE,
  istanbulDay,
  istanbulMinutesOfDay,
  parseConsentDate,
  parseIysDate,
  systemClock,
  toIstanbulWall,
  type IysDateParse,
} from "./time";

const H158 = { ok: false, code: "H158", message: "İzin tarihi yyyy-mm-dd hh:mm:ss formatında olmalıdır." };
const H157 = { ok: false, code: "H157", message: "Geçerli bir tarih girilmelidir." };

const iso = (r: IysDateParse): string => {
  if (!r.ok) throw new Error(`expected ok, got ${r.code}`);
  return r.date.toISOString();
};

const referenceFormatter = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/Istanbul",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});
const viaIntl = (d: Date): string => {
  const p = Object.fromEntries(referenceFormatter.formatToParts(d).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
};

// A fixed-seed generator keeps the sampled tests reproducible.
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("systemClock", () => {
  it("returns the current time", () => {
    const before = Date.now();
    const t = systemClock.now().getTime();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});

describe("formatIysDate", () => {
  it("renders a UTC instant as Istanbul wall time three hours ahead", () => {
    expect(formatIysDate(new Date("2024-01-02T10:00:00Z"))).toBe("2024-01-02 13:00:00");
  });

  it("moves to the next Istanbul day from 21:00 UTC", () => {
    expect(formatIysDate(new Date("2024-12-31T20:59:59Z"))).toBe("2024-12-31 23:59:59");
    expect(formatIysDate(new Date("2024-12-31T21:00:00Z"))).toBe("2025-01-01 00:00:00");
  });

  it("drops milliseconds instead of rounding them up", () => {
    expect(formatIysDate(new Date("2026-05-01T09:00:00.999Z"))).toBe("2026-05-01 12:00:00");
    expect(formatIysDate(new Date("2026-05-01T09:00:59.999Z"))).toBe("2026-05-01 12:00:59");
  });

  it("pads single-digit fields with zeros", () => {
    expect(formatIysDate(new Date("2025-03-04T02:05:06Z"))).toBe("2025-03-04 05:05:06");
  });

  it("handles 29 February of a leap year", () => {
    expect(formatIysDate(new Date("2028-02-29T12:00:00Z"))).toBe("2028-02-29 15:00:00");
  });

  it("uses UTC+3 on both sides of the 2016-09-07 switch to permanent summer time", () => {
    expect(formatIysDate(new Date("2016-09-06T20:59:59Z"))).toBe("2016-09-06 23:59:59");
    expect(formatIysDate(new Date("2016-09-06T21:00:00Z"))).toBe("2016-09-07 00:00:00");
  });

  it("uses UTC+2 for a winter instant before 2016", () => {
    expect(formatIysDate(new Date("2015-12-01T10:00:00Z"))).toBe("2015-12-01 12:00:00");
  });

  it("uses UTC+3 for a summer instant before 2016", () => {
    expect(formatIysDate(new Date("2015-07-01T10:00:00Z"))).toBe("2015-07-01 13:00:00");
    expect(formatIysDate(new Date("2015-04-30T21:00:00Z"))).toBe("2015-05-01 00:00:00");
  });

  it("follows the 2015 spring-forward and fall-back transitions", () => {
    expect(formatIysDate(new Date("2015-03-29T00:59:59Z"))).toBe("2015-03-29 02:59:59");
    expect(formatIysDate(new Date("2015-03-29T01:00:00Z"))).toBe("2015-03-29 04:00:00");
    expect(formatIysDate(new Date("2015-11-08T00:59:59Z"))).toBe("2015-11-08 03:59:59");
    expect(formatIysDate(new Date("2015-11-08T01:00:00Z"))).toBe("2015-11-08 03:00:00");
  });

  it("keeps UTC+3 through 2016's last would-be autumn transition", () => {
    expect(formatIysDate(new Date("2016-10-30T01:00:00Z"))).toBe("2016-10-30 04:00:00");
    expect(formatIysDate(new Date("2016-12-01T10:00:00Z"))).toBe("2016-12-01 13:00:00");
  });

  it("agrees with Intl Europe/Istanbul on sampled instants from 2010 to 2040", () => {
    const rnd = lcg(42);
    const from = Date.UTC(2010, 0, 1);
    const to = Date.UTC(2040, 0, 1);
    for (let i = 0; i < 5_000; i++) {
      const d = new Date(Math.floor(from + rnd() * (to - from)));
      expect(formatIysDate(d)).toBe(viaIntl(d));
    }
  });

  it("throws a RangeError for an invalid Date", () => {
    expect(() => formatIysDate(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe("parseIysDate", () => {
  it("takes exactly what IYS_DATE matches: ASCII digits in the İYS form, nothing else", () => {
    const forms = [
      "2024-01-02 13:00:00", "0001-01-01 00:00:00", "9999-12-31 23:59:59", "2024-13-02 13:00:00", "2024-02-30 10:00:00",
      "2024-01-02T13:00:00", "2024-01-02 13:00", "2024-01-02 13:00:00 ", " 2024-01-02 13:00:00", "2024/01/02 13:00:00",
      "2024-01-02 13-00-00", "2024-1-02 13:00:00", "202a-01-02 13:00:00", "2024-01-02 1:00:000", "2024-01-02 13:00:0\u0660",
      "\uFF12024-01-02 13:00:00", "2024-01-02\u00A013:00:00", "2024-01-02 13:00:00\n", "", "2024-01-02 24:00:00", "2024-01-02 13:60:00",
      "2024-01-02 13:00:/0", "2024-01-02 13:00::0", "-024-01-02 13:00:00", "+024-01-02 13:00:00",
    ];
    for (const s of forms) {
      const m = IYS_DATE.exec(s);
      const r = parseIysDate(s);
      if (!m) expect(r, s).toEqual(H158);
      else {
        const wall = fromIstanbulWall(daysFromCivil(Number(m[1]), Number(m[2]), Number(m[3])) * 86_400_000 + ((Number(m[4]) * 60 + Number(m[5])) * 60 + Number(m[6])) * 1000);
        const valid = Number(m[2]) <= 12 && Number(m[3]) <= daysInMonth(Number(m[1]), Number(m[2])) && Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6]) < 60 && Number(m[1]) > 0 && Number(m[2]) > 0 && Number(m[3]) > 0;
        expect(r, s).toEqual(valid && wall ? { ok: true, date: wall } : H157);
      }
    }
  });

  it("reads the İYS form as Istanbul wall time", () => {
    expect(iso(parseIysDate("2024-01-02 13:00:00"))).toBe("2024-01-02T10:00:00.000Z");
  });

  it("reads Istanbul midnight as 21:00 UTC of the previous day", () => {
    expect(iso(parseIysDate("2025-01-01 00:00:00"))).toBe("2024-12-31T21:00:00.000Z");
  });

  it("accepts the last second of a day", () => {
    expect(iso(parseIysDate("2026-12-31 23:59:59"))).toBe("2026-12-31T20:59:59.000Z");
  });

  it("accepts 29 February in leap years, including 2000", () => {
    expect(iso(parseIysDate("2024-02-29 12:00:00"))).toBe("2024-02-29T09:00:00.000Z");
    expect(iso(parseIysDate("2000-02-29 12:00:00"))).toBe("2000-02-29T10:00:00.000Z");
  });

  it("round-trips with formatIysDate on sampled instants", () => {
    const rnd = lcg(7);
    const from = Date.UTC(2016, 9, 1);
    const to = Date.UTC(2035, 0, 1);
    for (let i = 0; i < 2_000; i++) {
      const d = new Date(Math.floor((from + rnd() * (to - from)) / 1000) * 1000);
      expect(iso(parseIysDate(formatIysDate(d)))).toBe(d.toISOString());
    }
  });

  it("reads 2015-05-01 00:00:00 (the İYS epoch) with the summer offset", () => {
    expect(iso(parseIysDate("2015-05-01 00:00:00"))).toBe("2015-04-30T21:00:00.000Z");
  });

  it("reads a pre-2016 winter wall time with the UTC+2 offset", () => {
    expect(iso(parseIysDate("2015-12-01 12:00:00"))).toBe("2015-12-01T10:00:00.000Z");
    expect(iso(parseIysDate("2016-01-15 08:30:00"))).toBe("2016-01-15T06:30:00.000Z");
  });

  it("reads a 2016 summer wall time before the cut-over with UTC+3", () => {
    expect(iso(parseIysDate("2016-06-01 12:00:00"))).toBe("2016-06-01T09:00:00.000Z");
  });

  it("uses UTC+3 on both sides of 2016-09-07 00:00", () => {
    expect(iso(parseIysDate("2016-09-06 23:59:59"))).toBe("2016-09-06T20:59:59.000Z");
    expect(iso(parseIysDate("2016-09-07 00:00:00"))).toBe("2016-09-06T21:00:00.000Z");
  });

  it("round-trips with formatIysDate on sampled pre-2016 instants", () => {
    const rnd = lcg(11);
    const from = Date.UTC(2005, 0, 1);
    const to = Date.UTC(2016, 8, 7);
    for (let i = 0; i < 1_000; i++) {
      const d = new Date(Math.floor((from + rnd() * (to - from)) / 1000) * 1000);
      const back = parseIysDate(formatIysDate(d));
      // An autumn fall-back hour occurs twice; both instants must render the same wall time.
      expect(back.ok && formatIysDate(back.date)).toBe(formatIysDate(d));
    }
  });

  it("resolves an ambiguous fall-back wall time to its first occurrence", () => {
    expect(iso(parseIysDate("2015-11-08 03:30:00"))).toBe("2015-11-08T00:30:00.000Z");
  });

  it("rejects a wall time skipped by the spring-forward with H157", () => {
    expect(parseIysDate("2015-03-29 03:30:00")).toEqual(H157);
  });

  it.each([
    ["2023-02-30 10:00:00"],
    ["2023-02-29 10:00:00"],
    ["2100-02-29 10:00:00"],
    ["2024-04-31 10:00:00"],
    ["2024-13-01 10:00:00"],
    ["2024-00-10 10:00:00"],
    ["2024-01-00 10:00:00"],
    ["2024-01-32 10:00:00"],
    ["2024-01-02 25:00:00"],
    ["2024-01-02 24:00:00"],
    ["2024-01-02 23:60:00"],
    ["2024-01-02 23:59:60"],
    ["0000-01-01 00:00:00"],
  ])("rejects the impossible date or time %j with H157", (s) => {
    expect(parseIysDate(s)).toEqual(H157);
  });

  it.each([
    [""],
    ["2024-01-02"],
    ["2024-01-02 10:00"],
    ["2024-01-02 10:00:00.000"],
    ["2024-01-02T10:00:00"],
    ["2024-01-02T10:00:00Z"],
    ["2024-01-02 10:00:00Z"],
    ["2024-01-02 10:00:00+03:00"],
    ["2024-1-2 10:00:00"],
    ["2024-01-02 1:00:00"],
    ["24-01-02 10:00:00"],
    ["02.01.2024 10:00:00"],
    ["02-01-2024 10:00:00"],
    ["2024/01/02 10:00:00"],
    [" 2024-01-02 10:00:00"],
    ["2024-01-02 10:00:00 "],
    ["2024-01-02  10:00:00"],
    ["2024-01-02\t10:00:00"],
    ["2024-01-02 10:00:00\n"],
    ["２０２４-01-02 10:00:00"],
    ["yyyy-mm-dd hh:mm:ss"],
    ["1704189600000"],
  ])("rejects %j as not in the İYS format with H158", (s) => {
    expect(parseIysDate(s)).toEqual(H158);
  });
});

describe("parseConsentDate", () => {
  it("accepts the İYS form as Istanbul wall time", () => {
    expect(iso(parseConsentDate("2024-01-02 13:00:00"))).toBe("2024-01-02T10:00:00.000Z");
  });

  it("accepts ISO-8601 in UTC with Z", () => {
    expect(iso(parseConsentDate("2024-01-02T10:00:00Z"))).toBe("2024-01-02T10:00:00.000Z");
  });

  it("accepts ISO-8601 with an explicit +03:00 offset", () => {
    expect(iso(parseConsentDate("2024-01-02T13:00:00+03:00"))).toBe("2024-01-02T10:00:00.000Z");
  });

  it("accepts ISO-8601 with a colon-less offset", () => {
    expect(iso(parseConsentDate("2024-01-02T13:00:00+0300"))).toBe("2024-01-02T10:00:00.000Z");
  });

  it("accepts negative and half-hour offsets", () => {
    expect(iso(parseConsentDate("2024-01-02T05:00:00-05:00"))).toBe("2024-01-02T10:00:00.000Z");
    expect(iso(parseConsentDate("2024-01-02T15:30:00+05:30"))).toBe("2024-01-02T10:00:00.000Z");
  });

  it("accepts an offset that moves the instant into another day", () => {
    expect(iso(parseConsentDate("2024-01-01T01:00:00+03:00"))).toBe("2023-12-31T22:00:00.000Z");
  });

  it("truncates fractional seconds to whole seconds like İYS", () => {
    expect(iso(parseConsentDate("2024-01-02T10:00:00.999Z"))).toBe("2024-01-02T10:00:00.000Z");
    expect(iso(parseConsentDate("2024-01-02T10:00:00.123456789+03:00"))).toBe("2024-01-02T07:00:00.000Z");
  });

  it("keeps the H157 of an impossible İYS-form date rather than trying ISO", () => {
    expect(parseConsentDate("2023-02-30 10:00:00")).toEqual(H157);
  });

  it.each([["2023-02-30T10:00:00Z"], ["2024-01-02T24:00:00Z"], ["2024-01-02T10:00:60+03:00"], ["2024-01-02T10:00:00+24:00"], ["2024-01-02T10:00:00+03:60"]])(
    "rejects the impossible ISO date, time or offset %j with H157",
    (s) => {
      expect(parseConsentDate(s)).toEqual(H157);
    },
  );

  it.each([
    [""],
    ["2024-01-02T10:00:00"],
    ["2024-01-02T10:00:00z"],
    ["2024-01-02T10:00Z"],
    ["2024-01-02"],
    ["2024-01-02T10:00:00+03"],
    ["2024-01-02T10:00:00.Z"],
    ["2024-01-02T10:00:00 Z"],
    ["2024-01-02 10:00:00Z"],
    ["Tue, 02 Jan 2024 10:00:00 GMT"],
    [" 2024-01-02T10:00:00Z"],
  ])("rejects %j with H158 saying which forms are taken (an ISO time without an offset is in no zone)", (s) => {
    expect(parseConsentDate(s)).toEqual({ ...H158, message: expect.stringContaining("saat dilimli ISO 8601 (2026-03-04T10:00:00+03:00, …Z)") });
  });
});

describe("istanbulDay", () => {
  it("returns the Istanbul date, which runs three hours ahead of UTC", () => {
    expect(istanbulDay(new Date("2024-01-01T20:59:59.999Z"))).toBe("2024-01-01");
    expect(istanbulDay(new Date("2024-01-01T21:00:00Z"))).toBe("2024-01-02");
  });

  it("uses the UTC+2 winter offset before 2016", () => {
    expect(istanbulDay(new Date("2015-12-31T21:30:00Z"))).toBe("2015-12-31");
    expect(istanbulDay(new Date("2015-12-31T22:00:00Z"))).toBe("2016-01-01");
  });
});

describe("istanbulMinutesOfDay", () => {
  it("is 0 at Istanbul midnight and 1439 in the last minute", () => {
    expect(istanbulMinutesOfDay(new Date("2024-01-01T21:00:00Z"))).toBe(0);
    expect(istanbulMinutesOfDay(new Date("2024-01-01T20:59:59Z"))).toBe(1439);
  });

  it("counts minutes of Istanbul wall time", () => {
    expect(istanbulMinutesOfDay(new Date("2024-06-01T10:30:45Z"))).toBe(13 * 60 + 30);
  });

  it("uses the UTC+2 winter offset before 2016", () => {
    expect(istanbulMinutesOfDay(new Date("2015-12-01T10:00:00Z"))).toBe(12 * 60);
  });
});

describe("toIstanbulWall / fromIstanbulWall", () => {
  it("are inverse on instants after 2016", () => {
    const d = new Date("2026-03-04T05:06:07.089Z");
    expect(toIstanbulWall(d)).toBe(d.getTime() + 3 * 3_600_000);
    expect(fromIstanbulWall(toIstanbulWall(d))?.toISOString()).toBe(d.toISOString());
  });

  it("are inverse on a pre-2016 winter instant with milliseconds", () => {
    const d = new Date("2014-01-15T08:00:00.250Z");
    expect(toIstanbulWall(d)).toBe(d.getTime() + 2 * 3_600_000);
    expect(fromIstanbulWall(toIstanbulWall(d))?.toISOString()).toBe(d.toISOString());
  });

  it("returns null for a wall time skipped by a spring-forward", () => {
    expect(fromIstanbulWall(Date.UTC(2015, 2, 29, 3, 30))).toBeNull();
  });

  it("resolves local mean time of 1900 through the zone data", () => {
    const d = new Date("1900-06-01T12:00:00Z");
    expect(fromIstanbulWall(toIstanbulWall(d))?.toISOString()).toBe(d.toISOString());
  });
});

describe("civil day arithmetic", () => {
  it("counts days from 1970-01-01", () => {
    expect(daysFromCivil(1970, 1, 1)).toBe(0);
    expect(daysFromCivil(1969, 12, 31)).toBe(-1);
    expect(daysFromCivil(2000, 3, 1)).toBe(11_017);
  });

  it("agrees with Date.UTC and inverts itself over 1900–2100", () => {
    const mismatches: number[] = [];
    for (let day = daysFromCivil(1900, 1, 1); day <= daysFromCivil(2100, 12, 31); day++) {
      const d = new Date(day * 86_400_000);
      const c = civilFromDays(day);
      const same = c.y === d.getUTCFullYear() && c.m === d.getUTCMonth() + 1 && c.d === d.getUTCDate();
      if (!same || daysFromCivil(c.y, c.m, c.d) !== day) mismatches.push(day);
    }
    expect(mismatches).toEqual([]);
  });

  it("knows the length of every month, with Gregorian leap years", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((m) => daysInMonth(2023, m))).toEqual([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
    expect(daysInMonth(2024, 2)).toBe(29);
    expect(daysInMonth(2000, 2)).toBe(29);
    expect(daysInMonth(1900, 2)).toBe(28);
  });
});
