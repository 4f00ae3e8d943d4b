import { describe, expect, it } from "vitest";
import { BusinessCalendar, defaultHolidayTable, mergeHolidayTables, UnknownHolidayYearError, type HolidayTable } from "./calendar";
import { formatIysDate } from "./time";

const calendar = new BusinessCalendar();

/** An instant given as Istanbul wall time (UTC+3). */
const tr = (wall: string): Date => new Date(`${wall.replace(" ", "T")}+03:00`);
const endOf = (day: string): string => tr(`${day} 23:59:59.999`).toISOString();

// The table of domain.md ("Business days and deadlines").
const religious: Record<number, [string, string[], string, string[]]> = {
  2024: ["2024-04-09", ["2024-04-10", "2024-04-11", "2024-04-12"], "2024-06-15", ["2024-06-16", "2024-06-17", "2024-06-18", "2024-06-19"]],
  2025: ["2025-03-29", ["2025-03-30", "2025-03-31", "2025-04-01"], "2025-06-05", ["2025-06-06", "2025-06-07", "2025-06-08", "2025-06-09"]],
  2026: ["2026-03-19", ["2026-03-20", "2026-03-21", "2026-03-22"], "2026-05-26", ["2026-05-27", "2026-05-28", "2026-05-29", "2026-05-30"]],
  2027: ["2027-03-08", ["2027-03-09", "2027-03-10", "2027-03-11"], "2027-05-15", ["2027-05-16", "2027-05-17", "2027-05-18", "2027-05-19"]],
  2028: ["2028-02-25", ["2028-02-26", "2028-02-27", "2028-02-28"], "2028-05-04", ["2028-05-05", "2028-05-06", "2028-05-07", "2028-05-08"]],
  2029: ["2029-02-13", ["2029-02-14", "2029-02-15", "2029-02-16"], "2029-04-23", ["2029-04-24", "2029-04-25", "2029-04-26", "2029-04-27"]],
  2030: ["2030-02-03", ["2030-02-04", "2030-02-05", "2030-02-06"], "2030-04-12", ["2030-04-13", "2030-04-14", "2030-04-15", "2030-04-16"]],
};

const extra2031: Partial<HolidayTable> = {
  years: {
    "2031": {
      ramazanArife: "2031-01-23",
      ramazan: ["2031-01-24", "2031-01-25", "2031-01-26"],
      kurbanArife: "2031-04-01",
      kurban: ["2031-04-02", "2031-04-03", "2031-04-04", "2031-04-05"],
    },
  },
};

describe("defaultHolidayTable", () => {
  it("covers exactly the years 2024 to 2030", () => {
    expect(calendar.years()).toEqual([2024, 2025, 2026, 2027, 2028, 2029, 2030]);
  });

  it("holds the religious holidays of domain.md's table", () => {
    for (const [year, [ramazanArife, ramazan, kurbanArife, kurban]] of Object.entries(religious)) {
      expect(defaultHolidayTable.years[year]).toEqual({ ramazanArife, ramazan, kurbanArife, kurban });
    }
  });

  it("holds the seven fixed holidays and the 28 October half day", () => {
    expect(defaultHolidayTable.fixed.map((f) => f.date)).toEqual(["01-01", "04-23", "05-01", "05-19", "07-15", "08-30", "10-29"]);
    expect(defaultHolidayTable.fixedHalfDays).toEqual([{ date: "10-28", from: "13:00", name: "Cumhuriyet Bayramı arifesi" }]);
  });

  it("gives every fixed entry a Turkish name", () => {
    for (const f of [...defaultHolidayTable.fixed, ...defaultHolidayTable.fixedHalfDays]) expect(f.name).toMatch(/\S/);
    expect(defaultHolidayTable.fixed.find((f) => f.date === "10-29")?.name).toBe("Cumhuriyet Bayramı");
  });
});

describe("BusinessCalendar.isBusinessDay", () => {
  it("is true on an ordinary weekday", () => {
    expect(calendar.isBusinessDay("2026-11-23")).toBe(true);
    expect(calendar.isBusinessDay("2026-11-27")).toBe(true);
  });

  it("is false on Saturdays and Sundays", () => {
    expect(calendar.isBusinessDay("2026-11-28")).toBe(false);
    expect(calendar.isBusinessDay("2026-11-29")).toBe(false);
  });

  it.each([
    ["2026-01-01"],
    ["2026-04-23"],
    ["2026-05-01"],
    ["2026-05-19"],
    ["2026-07-15"],
    ["2026-10-29"],
    ["2027-08-30"],
  ])("is false on the fixed holiday %s", (day) => {
    expect(calendar.isBusinessDay(day)).toBe(false);
  });

  it("is false on every Ramazan and Kurban Bayramı day of every year in the table", () => {
    for (const [, ramazan, , kurban] of Object.values(religious)) {
      for (const day of [...ramazan, ...kurban]) expect(calendar.isBusinessDay(day), day).toBe(false);
    }
  });

  it("is true on weekday arife half days and 28 October", () => {
    expect(calendar.isBusinessDay("2026-03-19")).toBe(true);
    expect(calendar.isBusinessDay("2026-05-26")).toBe(true);
    expect(calendar.isBusinessDay("2026-10-28")).toBe(true);
    expect(calendar.isBusinessDay("2025-06-05")).toBe(true);
  });

  it("counts the business days of each year as an independent computation does", () => {
    const expected: Record<number, number> = { 2024: 250, 2025: 251, 2026: 251, 2027: 250, 2028: 254, 2029: 249, 2030: 250 };
    for (const year of calendar.years()) {
      let n = 0;
      for (let t = Date.UTC(year, 0, 1); new Date(t).getUTCFullYear() === year; t += 86_400_000) {
        if (calendar.isBusinessDay(new Date(t).toISOString().slice(0, 10))) n++;
      }
      expect(n, String(year)).toBe(expected[year]);
    }
  });

  it("throws UnknownHolidayYearError for a year after the table", () => {
    expect(() => calendar.isBusinessDay("2031-01-02")).toThrow(UnknownHolidayYearError);
  });

  it("throws UnknownHolidayYearError for a year before the table, even on a weekend", () => {
    expect(() => calendar.isBusinessDay("2023-06-01")).toThrow(UnknownHolidayYearError);
    expect(() => calendar.isBusinessDay("2023-12-31")).toThrow(UnknownHolidayYearError);
  });

  it.each([["2026-02-30"], ["2026-1-5"], ["2026-01-05 10:00:00"], [""], ["05.01.2026"]])("throws a RangeError for the malformed day %j", (day) => {
    expect(() => calendar.isBusinessDay(day)).toThrow(RangeError);
  });
});

describe("UnknownHolidayYearError", () => {
  it("names the year and says where to add its religious holidays", () => {
    const err = (() => {
      try {
        calendar.isBusinessDay("2031-03-03");
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(UnknownHolidayYearError);
    expect(err).toBeInstanceOf(Error);
    const e = err as UnknownHolidayYearError;
    expect(e.year).toBe(2031);
    expect(e.name).toBe("UnknownHolidayYearError");
    expect(e.message).toContain("2031");
    expect(e.message).toContain("Ramazan");
    expect(e.message).toContain("src/domain/holidays.json");
  });
});

describe("BusinessCalendar.holidayName", () => {
  it("names a fixed holiday", () => {
    expect(calendar.holidayName("2026-10-29")).toBe("Cumhuriyet Bayramı");
    expect(calendar.holidayName("2026-01-01")).toBe("Yılbaşı");
  });

  it("names each day of a religious holiday", () => {
    expect(calendar.holidayName("2026-03-20")).toBe("Ramazan Bayramı (1. gün)");
    expect(calendar.holidayName("2026-05-30")).toBe("Kurban Bayramı (4. gün)");
  });

  it("names both holidays when 19 May 2027 falls in Kurban Bayramı", () => {
    expect(calendar.holidayName("2027-05-19")).toBe("Atatürk'ü Anma, Gençlik ve Spor Bayramı / Kurban Bayramı (4. gün)");
  });

  it("is null on ordinary days, weekends and half days", () => {
    expect(calendar.holidayName("2026-11-23")).toBeNull();
    expect(calendar.holidayName("2026-11-28")).toBeNull();
    expect(calendar.holidayName("2026-05-26")).toBeNull();
    expect(calendar.holidayName("2026-10-28")).toBeNull();
  });

  it("throws UnknownHolidayYearError outside the table", () => {
    expect(() => calendar.holidayName("2031-01-01")).toThrow(UnknownHolidayYearError);
  });
});

describe("BusinessCalendar.halfDay", () => {
  it("describes arife afternoons and 28 October", () => {
    expect(calendar.halfDay("2026-05-26")).toEqual({ from: "13:00", name: "Kurban Bayramı arifesi" });
    expect(calendar.halfDay("2026-03-19")).toEqual({ from: "13:00", name: "Ramazan Bayramı arifesi" });
    expect(calendar.halfDay("2026-10-28")).toEqual({ from: "13:00", name: "Cumhuriyet Bayramı arifesi" });
  });

  it("is null on an ordinary day", () => {
    expect(calendar.halfDay("2026-11-23")).toBeNull();
  });

  it("is null when the Kurban arife of 2029 falls on the full holiday of 23 April", () => {
    expect(calendar.halfDay("2029-04-23")).toBeNull();
    expect(calendar.holidayName("2029-04-23")).toBe("Ulusal Egemenlik ve Çocuk Bayramı");
  });
});

describe("BusinessCalendar.deadline", () => {
  it("ends on Thursday 23:59:59.999 Istanbul for a RET received on Monday", () => {
    const d = calendar.deadline(tr("2026-11-23 10:00:00"), 3);
    expect(d.toISOString()).toBe("2026-11-26T20:59:59.999Z");
    expect(formatIysDate(d)).toBe("2026-11-26 23:59:59");
  });

  it("defaults to three business days", () => {
    expect(calendar.deadline(tr("2026-11-23 10:00:00")).toISOString()).toBe(endOf("2026-11-26"));
  });

  it("does not count the day of receipt however early it arrived", () => {
    expect(calendar.deadline(tr("2026-11-23 00:00:00")).toISOString()).toBe(endOf("2026-11-26"));
    expect(calendar.deadline(tr("2026-11-23 23:59:59")).toISOString()).toBe(endOf("2026-11-26"));
  });

  it("uses the Istanbul date of receipt, not the UTC date", () => {
    // 21:30 UTC on Sunday is already 00:30 on Monday in Istanbul.
    expect(calendar.deadline(new Date("2026-11-22T21:30:00Z")).toISOString()).toBe(endOf("2026-11-26"));
    expect(calendar.deadline(new Date("2026-11-22T20:30:00Z")).toISOString()).toBe(endOf("2026-11-25"));
  });

  it("ends on the following Wednesday for a RET received on Friday", () => {
    expect(calendar.deadline(tr("2026-11-27 16:00:00")).toISOString()).toBe(endOf("2026-12-02"));
  });

  it("ends on Wednesday for a RET received on Saturday or Sunday", () => {
    expect(calendar.deadline(tr("2026-11-28 09:00:00")).toISOString()).toBe(endOf("2026-12-02"));
    expect(calendar.deadline(tr("2026-11-29 09:00:00")).toISOString()).toBe(endOf("2026-12-02"));
  });

  it("counts the Kurban arife half day and skips Kurban Bayramı and the weekend in May 2026", () => {
    // 26 May (arife) counts, 27–30 May Kurban, 31 May Sunday, then 1 and 2 June.
    expect(calendar.deadline(tr("2026-05-25 10:00:00")).toISOString()).toBe(endOf("2026-06-02"));
  });

  it("counts 19 May 2027 once as it falls within Kurban Bayramı", () => {
    // 15–16 May weekend, 16–19 May Kurban (19 May also a fixed holiday), then 20, 21 and 24 May.
    expect(calendar.deadline(tr("2027-05-14 10:00:00")).toISOString()).toBe(endOf("2027-05-24"));
  });

  it("skips 23 April and Kurban Bayramı of 2029, then 1 May", () => {
    // 23 Apr holiday (and arife), 24–27 Apr Kurban, 30 Apr counts, 1 May holiday, 2 and 3 May count.
    expect(calendar.deadline(tr("2029-04-20 10:00:00")).toISOString()).toBe(endOf("2029-05-03"));
  });

  it("counts the 28 October half day and skips 29 October", () => {
    expect(calendar.deadline(tr("2026-10-27 10:00:00")).toISOString()).toBe(endOf("2026-11-02"));
    expect(calendar.deadline(tr("2026-10-28 14:00:00")).toISOString()).toBe(endOf("2026-11-03"));
  });

  it("skips Ramazan Bayramı across a month boundary in 2025", () => {
    // 29 Mar arife is a Saturday; 30 Mar–1 Apr Ramazan; then 2, 3 and 4 April.
    expect(calendar.deadline(tr("2025-03-28 10:00:00")).toISOString()).toBe(endOf("2025-04-04"));
  });

  it("crosses the year boundary and skips 1 January", () => {
    // 1 Jan 2027 Friday holiday, 2–3 Jan weekend, then 4, 5 and 6 January.
    expect(calendar.deadline(tr("2026-12-31 10:00:00")).toISOString()).toBe(endOf("2027-01-06"));
    expect(calendar.deadline(tr("2024-12-31 18:00:00")).toISOString()).toBe(endOf("2025-01-06"));
  });

  it("accepts a receipt on the last day before the table when only table years are counted", () => {
    expect(calendar.deadline(tr("2023-12-31 12:00:00")).toISOString()).toBe(endOf("2024-01-04"));
  });

  it("throws UnknownHolidayYearError when counting reaches 2031", () => {
    expect(() => calendar.deadline(tr("2030-12-31 10:00:00"))).toThrow(UnknownHolidayYearError);
  });

  it("throws UnknownHolidayYearError for a receipt in 2023", () => {
    expect(() => calendar.deadline(tr("2023-06-01 10:00:00"))).toThrow(UnknownHolidayYearError);
  });

  it("ends on the next business day for one business day", () => {
    expect(calendar.deadline(tr("2026-11-27 10:00:00"), 1).toISOString()).toBe(endOf("2026-11-30"));
  });

  it("ends at the end of the day of receipt for zero business days", () => {
    expect(calendar.deadline(tr("2026-11-28 10:00:00"), 0).toISOString()).toBe(endOf("2026-11-28"));
  });

  it.each([[-1], [1.5], [Number.NaN]])("throws a RangeError for %d business days", (n) => {
    expect(() => calendar.deadline(tr("2026-11-23 10:00:00"), n)).toThrow(RangeError);
  });
});

describe("BusinessCalendar.addBusinessDays", () => {
  it("keeps the Istanbul wall-clock time", () => {
    expect(formatIysDate(calendar.addBusinessDays(tr("2026-11-23 10:15:30"), 3))).toBe("2026-11-26 10:15:30");
  });

  it("skips the weekend", () => {
    expect(formatIysDate(calendar.addBusinessDays(tr("2026-11-27 23:30:00"), 1))).toBe("2026-11-30 23:30:00");
  });

  it("skips Ramazan Bayramı", () => {
    expect(formatIysDate(calendar.addBusinessDays(tr("2025-03-28 09:00:00"), 1))).toBe("2025-04-02 09:00:00");
  });

  it("starts from a weekend day without counting it", () => {
    expect(formatIysDate(calendar.addBusinessDays(tr("2026-11-28 09:00:00"), 1))).toBe("2026-11-30 09:00:00");
  });

  it("returns the same instant for zero days", () => {
    const from = new Date("2026-11-28T06:00:00.123Z");
    expect(calendar.addBusinessDays(from, 0).toISOString()).toBe(from.toISOString());
  });

  it("keeps milliseconds", () => {
    expect(calendar.addBusinessDays(new Date("2026-11-23T07:00:00.456Z"), 2).toISOString()).toBe("2026-11-25T07:00:00.456Z");
  });

  it("throws a RangeError for a negative count", () => {
    expect(() => calendar.addBusinessDays(tr("2026-11-23 10:00:00"), -2)).toThrow(RangeError);
  });
});

describe("BusinessCalendar.isWithinBusinessDays", () => {
  const from = tr("2026-11-23 10:00:00");

  it("is true at the deadline itself", () => {
    expect(calendar.isWithinBusinessDays(from, new Date("2026-11-26T20:59:59.999Z"), 3)).toBe(true);
  });

  it("is false one millisecond after the deadline", () => {
    expect(calendar.isWithinBusinessDays(from, new Date("2026-11-26T21:00:00.000Z"), 3)).toBe(false);
  });

  it("is true at or before the start", () => {
    expect(calendar.isWithinBusinessDays(from, from, 3)).toBe(true);
    expect(calendar.isWithinBusinessDays(from, tr("2026-11-01 10:00:00"), 3)).toBe(true);
  });

  it("is true after a weekend that stretches the calendar span", () => {
    // Consent on Friday, registered the next Wednesday evening: Mon, Tue, Wed are the three business days.
    expect(calendar.isWithinBusinessDays(tr("2026-11-27 16:00:00"), tr("2026-12-02 22:00:00"), 3)).toBe(true);
    expect(calendar.isWithinBusinessDays(tr("2026-11-27 16:00:00"), tr("2026-12-03 00:00:01"), 3)).toBe(false);
  });

  it("is true across Kurban Bayramı that a plain day count would reject", () => {
    expect(calendar.isWithinBusinessDays(tr("2026-05-25 10:00:00"), tr("2026-06-02 18:00:00"), 3)).toBe(true);
    expect(calendar.isWithinBusinessDays(tr("2026-05-25 10:00:00"), tr("2026-06-03 09:00:00"), 3)).toBe(false);
  });

  it("needs no holiday data when the span is within n calendar days", () => {
    expect(calendar.isWithinBusinessDays(tr("2023-12-29 10:00:00"), tr("2024-01-01 10:00:00"), 3)).toBe(true);
  });

  it("throws UnknownHolidayYearError when the answer depends on an unknown year", () => {
    expect(() => calendar.isWithinBusinessDays(tr("2023-06-01 10:00:00"), tr("2023-06-20 10:00:00"), 3)).toThrow(UnknownHolidayYearError);
  });
});

describe("mergeHolidayTables", () => {
  it("adds a year so its dates can be computed without code changes", () => {
    const cal = new BusinessCalendar(mergeHolidayTables(defaultHolidayTable, extra2031));
    expect(cal.years()).toEqual([2024, 2025, 2026, 2027, 2028, 2029, 2030, 2031]);
    expect(cal.isBusinessDay("2031-01-24")).toBe(false);
    expect(cal.isBusinessDay("2031-01-23")).toBe(true);
    expect(cal.deadline(tr("2030-12-31 10:00:00")).toISOString()).toBe(endOf("2031-01-06"));
  });

  it("applies the fixed holidays to an added year", () => {
    const cal = new BusinessCalendar(mergeHolidayTables(defaultHolidayTable, extra2031));
    expect(cal.isBusinessDay("2031-01-01")).toBe(false);
    expect(cal.holidayName("2031-04-23")).toBe("Ulusal Egemenlik ve Çocuk Bayramı");
    expect(cal.halfDay("2031-10-28")).toEqual({ from: "13:00", name: "Cumhuriyet Bayramı arifesi" });
  });

  it("replaces a whole year that the extra table restates", () => {
    const moved = mergeHolidayTables(defaultHolidayTable, {
      years: { "2030": { ramazanArife: "2030-02-04", ramazan: ["2030-02-05", "2030-02-06", "2030-02-07"], kurbanArife: "2030-04-12", kurban: ["2030-04-13", "2030-04-14", "2030-04-15", "2030-04-16"] } },
    });
    const cal = new BusinessCalendar(moved);
    expect(cal.isBusinessDay("2030-02-04")).toBe(true);
    expect(cal.isBusinessDay("2030-02-07")).toBe(false);
  });

  it("adds a new fixed holiday and renames one on the same date", () => {
    const merged = mergeHolidayTables(defaultHolidayTable, {
      fixed: [
        { date: "01-01", name: "Yeni Yıl" },
        { date: "12-31", name: "Yılbaşı arifesi (örnek)" },
      ],
    });
    expect(merged.fixed).toHaveLength(8);
    const cal = new BusinessCalendar(merged);
    expect(cal.holidayName("2026-01-01")).toBe("Yeni Yıl");
    expect(cal.isBusinessDay("2026-12-31")).toBe(false);
  });

  it("leaves both input tables unchanged", () => {
    const before = JSON.stringify(defaultHolidayTable);
    const extraBefore = JSON.stringify(extra2031);
    mergeHolidayTables(defaultHolidayTable, extra2031);
    expect(JSON.stringify(defaultHolidayTable)).toBe(before);
    expect(JSON.stringify(extra2031)).toBe(extraBefore);
  });

  it("keeps the base table when the extra table is empty", () => {
    expect(mergeHolidayTables(defaultHolidayTable, {})).toEqual(defaultHolidayTable);
  });
});

describe("BusinessCalendar construction", () => {
  const withYear = (year: Record<string, unknown>): HolidayTable =>
    ({ fixed: [], fixedHalfDays: [], years: { "2031": { ...extra2031.years?.["2031"], ...year } } }) as HolidayTable;

  it("rejects a malformed religious date", () => {
    expect(() => new BusinessCalendar(withYear({ ramazan: ["2031-01-24", "2031-02-30"] }))).toThrow(/Invalid holiday table: years\.2031\.ramazan\[1\]/);
  });

  it("rejects an empty holiday list", () => {
    expect(() => new BusinessCalendar(withYear({ kurban: [] }))).toThrow(/years\.2031\.kurban must be a non-empty list/);
  });

  it("rejects a missing arife", () => {
    expect(() => new BusinessCalendar(withYear({ kurbanArife: undefined }))).toThrow(/years\.2031\.kurbanArife/);
  });

  it("rejects a year key that is not four digits", () => {
    expect(() => new BusinessCalendar({ fixed: [], fixedHalfDays: [], years: { "31": religiousYear() } })).toThrow(/year key "31"/);
  });

  it("rejects a fixed holiday that is not MM-DD", () => {
    expect(() => new BusinessCalendar({ ...defaultHolidayTable, fixed: [{ date: "13-01", name: "x" }] })).toThrow(/fixed\[0\]\.date/);
    expect(() => new BusinessCalendar({ ...defaultHolidayTable, fixed: [{ date: "2026-01-01", name: "x" }] })).toThrow(/fixed\[0\]\.date/);
  });

  it("rejects a fixed holiday without a name", () => {
    expect(() => new BusinessCalendar({ ...defaultHolidayTable, fixed: [{ date: "01-01", name: "" }] })).toThrow(/fixed\[0\]\.name/);
  });

  it("rejects a half day whose start is not HH:mm", () => {
    expect(() => new BusinessCalendar({ ...defaultHolidayTable, fixedHalfDays: [{ date: "10-28", from: "1pm", name: "x" }] })).toThrow(/fixedHalfDays\[0\]\.from/);
  });

  it("treats every year as unknown with an empty table", () => {
    const cal = new BusinessCalendar({ fixed: [], fixedHalfDays: [], years: {} });
    expect(cal.years()).toEqual([]);
    expect(() => cal.isBusinessDay("2026-11-23")).toThrow(UnknownHolidayYearError);
  });

  function religiousYear() {
    return { ramazanArife: "2031-01-23", ramazan: ["2031-01-24"], kurbanArife: "2031-04-01", kurban: ["2031-04-02"] };
  }
});
