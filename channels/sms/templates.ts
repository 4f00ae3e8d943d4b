import { z } from "zod";
import { countSegments, type SegmentInfo } from "../../src/domain/sms-segments";

/**
 * Confirmation and help replies, Turkish first. Placeholders: {brand} (the brand's first short name,
 * or its code; several brands joined with ", "), {channels} ("SMS", "arama", "SMS ve arama"),
 * {optout} (the command that refuses exactly what the reply confirms: "RET MİGROS", "RET MİGROS
 * ARAMA", "RET MİGROS TUMU") and {ref} (the receipt's reference, quoted by support). A brand may
 * override any of them.
 */
export const templateKeys = ["refused", "consented", "help", "failed"] as const;
export type TemplateKey = (typeof templateKeys)[number];
export type Templates = Record<TemplateKey, string>;

/**
 * Each fits one SMS segment for a brand name of up to 6 letters and a reference of 8 characters
 * (65 UCS-2 characters: 70 less the operators' 5): a Turkish letter makes the whole reply UCS-2, and
 * a second segment doubles the cost of every confirmation.
 */
export const defaultTemplates: Templates = {
  refused: "{brand} markasından {channels} almayı reddettiniz. No: {ref}",
  consented: "{brand} {channels} izni alındı. Ret: {optout} No:{ref}",
  help: "İptal için RET {brand}, aramalar için RET {brand} ARAMA yazın.",
  failed: "{brand}: talebiniz işlenemedi (No: {ref}). YARDIM yazın.",
};

/**
 * The help reply on a number several brands share: one brand's "RET MİGROS" would mislead the
 * others' recipients, and "RET MİGROS, KOTON" refuses MİGROS only. {brand} lists them all.
 */
export const SHARED_HELP = "İleti almamak için RET ve marka adını yazın ({brand}); aramalar için sonuna ARAMA ekleyin.";

const placeholders = ["brand", "channels", "optout", "ref"] as const;
type Values = Record<(typeof placeholders)[number], string>;

/** Turkish operators append a 5-character sender code to commercial SMS (domain page). */
export const OPERATOR_RESERVED_CHARS = 5;
/** A reply may take at most this many segments; longer templates are refused when configured. */
export const MAX_SEGMENTS = 2;

/**
 * The longest values a placeholder takes: a 32-character brand name with a letter outside GSM-7 (a
 * short name like "ŞOK" makes the whole reply UCS-2, 67 characters a segment), the longest channel
 * phrase, a long ref. The defaults pass the same check (test/sms.test.ts).
 */
const LONGEST_NAME = `Ş${"W".repeat(31)}`;
const worstCase: Values = { brand: LONGEST_NAME, channels: "SMS ve arama", optout: `RET ${LONGEST_NAME} TUMU`, ref: "S999999999999" };

export function channelsPhrase(types: readonly string[]): string {
  const sms = types.includes("MESAJ");
  const calls = types.includes("ARAMA");
  return sms && calls ? "SMS ve arama" : calls ? "arama" : "SMS";
}

/**
 * The SMS that refuses `types` of the brand called `name` in the keyword grammar: `RET <brand>`
 * refuses SMS only, so a consent to calls is undone by `… ARAMA` and one to both by `… TUMU`
 * (ASCII: the reply need not turn UCS-2 for it).
 */
export function optOutCommand(name: string, types: readonly string[]): string {
  const sms = types.includes("MESAJ");
  const calls = types.includes("ARAMA");
  return `RET ${name}${sms && calls ? " TUMU" : calls ? " ARAMA" : ""}`;
}

export function renderTemplate(template: string, values: Values): string {
  return template.replace(/\{(brand|channels|optout|ref)\}/g, (_, k: keyof Values) => values[k]);
}

export function segmentsOf(text: string, turkishShift = false): SegmentInfo {
  return countSegments(text, { turkishShift, reservedChars: OPERATOR_RESERVED_CHARS });
}

/** Why a template is unusable, or null. Checked when a brand is configured, never when sending. */
export function templateProblem(template: string): string | null {
  const unknown = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).filter((k) => !(placeholders as readonly string[]).includes(k));
  if (unknown.length) return `unknown placeholder {${unknown[0]}}; use {brand}, {channels}, {optout} or {ref}`;
  if (!template.includes("{brand}")) return "must name the brand ({brand})";
  const info = segmentsOf(renderTemplate(template, worstCase));
  if (info.segments > MAX_SEGMENTS) {
    return `takes ${info.segments} SMS segments (${info.encoding}, ${info.units} units with the longest brand name); at most ${MAX_SEGMENTS} allowed`;
  }
  return null;
}

/** Per-brand overrides as accepted by the brands API (`settings.smsTemplates`). */
export const TemplateOverrides = z
  .object(Object.fromEntries(templateKeys.map((k) => [k, z.string().trim().min(1).max(500).optional()])) as Record<TemplateKey, z.ZodOptional<z.ZodString>>)
  .strict()
  .superRefine((t, ctx) => {
    for (const k of templateKeys) {
      const text = t[k];
      const problem = text === undefined ? null : templateProblem(text);
      if (problem) ctx.addIssue({ code: "custom", path: [k], message: problem });
    }
  });

export function templatesOf(settings: Record<string, unknown>): Templates {
  const parsed = TemplateOverrides.safeParse(settings.smsTemplates ?? {});
  return { ...defaultTemplates, ...(parsed.success ? stripUndefined(parsed.data) : {}) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The default refusal's "{brand} markasından", said otherwise of several brands (renderWith). */
const BRAND_FROM = "{brand} markasından";

/**
 * Renders `template` with BRAND_FROM said as `from` (Turkish marks the plural on the noun,
 * "markalarından", but keeps a noun after a number singular, "diğer 2 markadan").
 */
function renderWith(template: string, values: Values, from: string): string {
  return template
    .split(BRAND_FROM)
    .map((part) => renderTemplate(part, values))
    .join(from);
}

/**
 * The reply for `brands`: their names joined ("MİGROS, KOTON markalarından"), or, when that would
 * not fit, the first name and the count of the others ("MİGROS ve diğer 2 markadan", elsewhere
 * "MİGROS ve 2 marka daha"), so a shared number's reply still fits.
 */
export function renderReply(template: string, brandNames: string[], types: readonly string[], ref: string): string {
  const channels = channelsPhrase(types);
  // One command a brand: "RET MİGROS, KOTON" would refuse MİGROS only.
  const optout = brandNames.map((n) => optOutCommand(n, types)).join(", ");
  const brand = brandNames.join(", ");
  if (brandNames.length <= 1) return renderTemplate(template, { brand, channels, optout, ref });
  const joined = renderWith(template, { brand, channels, optout, ref }, `${brand} markalarından`);
  if (segmentsOf(joined).segments <= MAX_SEGMENTS) return joined;
  const [first] = brandNames as [string];
  const others = brandNames.length - 1;
  return renderWith(template, { brand: `${first} ve ${others} marka daha`, channels, optout: optOutCommand(first, types), ref }, `${first} ve diğer ${others} markadan`);
}
