import type { Db } from "../../db/index";
import type { ActionOutcome, ConsentAction, OutboxInput } from "../../db/ledger";
import type { Interpretation, ReceiptInterpreter, ReceiptRow } from "../../jobs/consent-apply.handler";
import { brandById } from "../../src/brands";
import { normalizePhone } from "../../src/domain/address";
import { ivrChoices, type IvrChoice } from "./state";

/** What the IVR puts in a confirmed call's receipt `payload` (the apply job reads it; job data stays ids only). */
export interface VoicePayload {
  brandId: number;
  choice: IvrChoice;
  types: ("ARAMA" | "MESAJ")[];
  status: "RET" | "ONAY";
  /** True when the caller ID was withheld or invalid and the number was keyed in (refusals only). */
  keyed: boolean;
  lang: "tr" | "en";
}

/** What the interpreter stores in `receipts.result`; the final prompt and the SMS confirmation read it. */
export interface VoiceResult {
  status: "RET" | "ONAY";
  types: ("ARAMA" | "MESAJ")[];
  /** Brand codes (the SMS confirmation's shape). */
  brands: string[];
  choice: IvrChoice;
  /** recorded: at least one change; unchanged: already in effect (H174); rejected: every action refused by the rules. */
  outcome?: "recorded" | "unchanged" | "rejected";
  reason?: string;
}

export function choiceActions(choice: IvrChoice): Pick<VoicePayload, "types" | "status"> {
  switch (choice) {
    case "refuse-calls": return { types: ["ARAMA"], status: "RET" };
    case "refuse-sms": return { types: ["MESAJ"], status: "RET" };
    case "refuse-both": return { types: ["ARAMA", "MESAJ"], status: "RET" };
    case "consent-both": return { types: ["ARAMA", "MESAJ"], status: "ONAY" };
    case "consent-calls": return { types: ["ARAMA"], status: "ONAY" };
    case "consent-sms": return { types: ["MESAJ"], status: "ONAY" };
  }
}

export function outcomeOf(outcomes: ActionOutcome[]): NonNullable<VoiceResult["outcome"]> {
  if (outcomes.length > 0 && outcomes.every((o) => o.kind === "rejected")) return "rejected";
  if (outcomes.some((o) => o.kind === "recorded" || o.kind === "duplicate")) return "recorded";
  return "unchanged";
}

/**
 * Turns a confirmed IVR call into ledger actions: `HS_CAGRI_MERKEZI`, the caller's number (or the
 * one keyed in, refusals only), `BIREYSEL`, dated when the confirmation reached us. When the brand
 * enables `ivrSmsConfirmation`, an SMS confirmation row is written in the same transaction.
 */
export function voiceInterpreter(db: Db): ReceiptInterpreter {
  return function interpretVoice(receipt: ReceiptRow): Interpretation {
    const p = JSON.parse(receipt.payload || "{}") as Partial<VoicePayload>;
    const invalid = (reason: string): Interpretation => ({ actions: [], status: "invalid", result: { reason } });
    if (!p.choice || !ivrChoices.includes(p.choice) || typeof p.brandId !== "number") return invalid("payload without a choice or brand");
    const brand = brandById(db, p.brandId);
    if (!brand) return invalid("unknown brand");
    const { types, status } = choiceActions(p.choice);
    if (status === "ONAY" && p.keyed) return invalid("a keyed-in number may only refuse");
    const phone = normalizePhone(receipt.fromAddress ?? "");
    if (!phone.ok || !phone.value.startsWith("+90")) return invalid("caller: not a Turkish phone number");

    const consentDate = Math.floor(receipt.receivedAt / 1000) * 1000;
    const actions: ConsentAction[] = types.map((type) => ({
      brandId: brand.id,
      recipient: phone.value,
      recipientKind: "phone" as const,
      phoneKind: phone.phoneKind,
      recipientType: "BIREYSEL" as const,
      type,
      status,
      source: "HS_CAGRI_MERKEZI" as const,
      consentDate,
      origin: "ivr" as const,
      datedOnReceipt: true,
      receivedAt: receipt.receivedAt,
      receiptId: receipt.id,
      idempotencyKey: `ivr:${receipt.id}:${brand.code}:${type}`,
    }));
    const result: VoiceResult = { status, types, brands: [brand.code], choice: p.choice };
    const smsConfirmation = brand.settings.ivrSmsConfirmation === true && phone.phoneKind === "mobile";
    return {
      actions,
      status: "applied",
      result: result as unknown as Record<string, unknown>,
      // Runs inside the ledger transaction before the receipt is marked, so the outcome lands in `result`.
      outbox: (outcomes): OutboxInput[] => {
        result.outcome = outcomeOf(outcomes);
        // What the caller hears and is texted is what took effect: a fixed line's SMS part of "4" or
        // "3" is refused by the rules (H464, MESAJ needs a mobile), its calls part stands.
        const kept = types.filter((_, i) => outcomes[i]?.kind !== "rejected");
        if (kept.length > 0 && kept.length < types.length) result.types = kept;
        // A number keyed in (a withheld caller ID) is texted only when its refusal changed something:
        // anyone may key in anyone's number, and calling again must not text it again and again.
        if (!smsConfirmation || (p.keyed && result.outcome !== "recorded")) return [];
        const target = result.outcome === "rejected" ? "failed" : status === "RET" ? "refused" : "consented";
        return [{ kind: "confirmation", receiptId: receipt.id, target }];
      },
    };
  };
}
