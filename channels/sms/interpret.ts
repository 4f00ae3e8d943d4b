import type { Db } from "../../db/index";
import type { ActionOutcome, ConsentAction, OutboxInput } from "../../db/ledger";
import type { Interpretation, ReceiptInterpreter, ReceiptRow } from "../../jobs/consent-apply.handler";
import { brandTextNames, brandsOfNumber, storedKeywords } from "../../src/brands";
import { normalizePhone } from "../../src/domain/address";
import { defaultKeywordWords, effectiveNumberWords, parseKeyword, type KeywordWords } from "../../src/domain/keywords";
import { negates, REFUSAL_WORDS } from "../../src/domain/negation";
import type { TemplateKey } from "./templates";

/** What the SMS interpreter stores in `receipts.result`, read back by the confirmation job. */
export interface SmsResult {
  parse: "action" | "help" | "unknown";
  reason?: string;
  status?: "RET" | "ONAY";
  types?: ("MESAJ" | "ARAMA")[];
  /** Brand codes the reply names. */
  brands: string[];
  bare?: boolean;
  limited?: boolean;
  /** The text of a concatenated SMS some of whose pieces never came: a consent in it is not taken. */
  incomplete?: boolean;
}

/**
 * The pieces of one concatenated SMS come seconds apart. Phones reuse their 8-bit concat-ref, so a
 * piece left over from an earlier message can complete a new one within CONCAT_WINDOW_MS ("ONAY "
 * + "KOTON" from a "RET KOTON"): pieces further apart than this may refuse, never consent.
 */
export const CONSENT_MAX_SPREAD_MS = 2 * 60_000;

/**
 * Why a consent read from an SMS is not explicit enough to record, or null. Consent is given brand
 * by brand: what arrived of a concatenated SMS whose other pieces never came, or came minutes
 * apart, may refuse, never consent ("ONAY " may have gone on "… değil", or be another message's),
 * nor does one with a refusing or negating word after the brand ("ONAY MİGROS DEĞİL");
 * a bare ONAY on a number several brands share names none of them (a bare RET refuses them all),
 * nor does a name several of its brands answer to.
 */
function consentDoubt(parse: { bare: boolean; brands: string[]; rest: string[] }, payload: { incomplete?: boolean; spreadMs?: number }, words: KeywordWords): string | null {
  if (payload.incomplete === true) return "a consent in an incomplete message";
  // "ONAY MİGROS DEĞİL", "EVET MIGROS ISTEMIYORUM": the grammar ignores the words after the brand,
  // but a consent said with a "no" is not explicit.
  if (parse.rest.some((w) => negates(w) || REFUSAL_WORDS.has(w) || words.refuse.includes(w))) return "a consent said with a refusing or negating word";
  // "EVET MİGROS TELEFON", "EVET MIGROS YANLIŞ NUMARA", "ONAY KOTON VE ŞOK": a consent is taken only
  // as the grammar says it (brand, channel), with nothing after it but thanks; anything else may
  // narrow, widen or deny it, and the help reply says how to write it.
  if (parse.rest.some((w) => !CONSENT_FILLERS.has(w))) return "a consent with words the grammar does not read";
  if ((payload.spreadMs ?? 0) > CONSENT_MAX_SPREAD_MS) return "a consent whose pieces came minutes apart";
  if (parse.brands.length > 1) return parse.bare ? "a consent that names no brand on a shared number" : "a consent whose brand name fits several brands";
  return null;
}

/** What may follow a consent without making it less explicit: please and thanks, folded. */
const CONSENT_FILLERS: ReadonlySet<string> = new Set(["lutfen", "tesekkurler", "tesekkur", "ederim", "ederiz", "sagol", "sagolun", "tamam", "ok", "please", "thanks", "thank", "you"]);

export function receiptRef(receiptId: number): string {
  return `S${receiptId}`;
}

/** The reply for a set of outcomes: a rule rejection of every action is a failure; no-ops are confirmed like changes. */
export function replyFor(status: "RET" | "ONAY", outcomes: ActionOutcome[]): TemplateKey {
  if (outcomes.length > 0 && outcomes.every((o) => o.kind === "rejected")) return "failed";
  return status === "RET" ? "refused" : "consented";
}

/**
 * Turns an inbound SMS into ledger actions: the keyword grammar against the brands the `To` number
 * serves, `HS_MESAJ`, the sender's number, `BIREYSEL`, dated when the SMS reached us. One
 * confirmation row per receipt (help for anything that does not parse), written in the same
 * transaction; a rate-limited sender's confirmation is written already skipped.
 */
export function smsInterpreter(db: Db, fixedWords?: KeywordWords): ReceiptInterpreter {
  const keywordsOf = db.$client.prepare<[number], { keywords: string | null }>("SELECT keywords FROM numbers WHERE id = ?");
  /** The words of the number texted: the defaults and its own (a configuration the API checked when it was stored). */
  const wordsOf = (numberId: number): KeywordWords => {
    if (fixedWords) return fixedWords;
    return effectiveNumberWords(storedKeywords(keywordsOf.get(numberId)?.keywords ?? null));
  };
  return function interpretSms(receipt: ReceiptRow): Interpretation {
    const payload = JSON.parse(receipt.payload || "{}") as { limited?: boolean; incomplete?: boolean; spreadMs?: number };
    const limited = payload.limited === true;
    const from = normalizePhone(receipt.fromAddress ?? "");
    if (receipt.numberId === null) return { actions: [], status: "unroutable", result: { reason: "unknown To number" } };
    // An alphanumeric or otherwise invalid sender cannot be answered nor recorded against a number.
    if (!from.ok) return { actions: [], status: "invalid", result: { reason: `sender: ${from.message}` } };

    // The brands the number served when the SMS reached us (one detached since still counts).
    const brands = brandsOfNumber(db, receipt.numberId, "sms", receipt.receivedAt);
    const words = wordsOf(receipt.numberId);
    const parse = parseKeyword(receipt.body ?? "", brands.map((b) => ({ code: b.code, names: brandTextNames(b) })), words);
    const confirmation = (target: TemplateKey): OutboxInput =>
      limited ? { kind: "confirmation", receiptId: receipt.id, target, skipped: "rate limited: confirmation dropped" } : { kind: "confirmation", receiptId: receipt.id, target };

    const unclearConsent = parse.kind === "action" && parse.status === "ONAY" ? consentDoubt(parse, payload, words) : null;
    if (parse.kind !== "action" || unclearConsent) {
      const result: SmsResult = {
        parse: parse.kind === "action" ? "unknown" : parse.kind,
        ...(parse.kind === "unknown" ? { reason: parse.reason } : unclearConsent ? { reason: unclearConsent } : {}),
        brands: brands.map((b) => b.code),
        limited,
        ...(payload.incomplete ? { incomplete: true } : {}),
      };
      return { actions: [], status: "applied", result: { ...result }, outbox: () => [confirmation("help")] };
    }

    const chosen = brands.filter((b) => parse.brands.includes(b.code));
    // Dated to the second the SMS reached us (İYS dates have seconds).
    const consentDate = Math.floor(receipt.receivedAt / 1000) * 1000;
    const actions: ConsentAction[] = chosen.flatMap((b) =>
      parse.types.map((type) => ({
        brandId: b.id,
        recipient: from.value,
        recipientKind: "phone" as const,
        phoneKind: from.phoneKind,
        recipientType: "BIREYSEL" as const,
        type,
        status: parse.status,
        source: "HS_MESAJ" as const,
        consentDate,
        datedOnReceipt: true,
        receivedAt: receipt.receivedAt,
        origin: "sms" as const,
        receiptId: receipt.id,
        idempotencyKey: `sms:${receipt.id}:${b.code}:${type}`,
      })),
    );
    const result: SmsResult = { parse: "action", status: parse.status, types: parse.types, brands: chosen.map((b) => b.code), bare: parse.bare, limited };
    return {
      actions,
      status: "applied",
      result: { ...result },
      outbox: (outcomes) =>
        // A consent applied late, after the sender's own later refusal: that refusal was confirmed;
        // a "could not be processed" reply after it would only confuse.
        outcomes.length > 0 && outcomes.every((o) => o.kind === "rejected" && o.supersededByRefusal)
          ? [{ kind: "confirmation", receiptId: receipt.id, target: "failed", skipped: "a consent the sender's later refusal supersedes: not answered (the refusal was)" }]
          : [confirmation(replyFor(parse.status, outcomes))],
    };
  };
}
