import { Hono, type Context } from "hono";
import { bodyLimit } from "../../src/body-limit";
import { stmt } from "../../db/index";
import { brandById } from "../../src/brands";
import { MicroBatcher } from "../../src/batch";
import type { AppDeps, HonoEnv } from "../../src/env";
import { clientIp, RateLimiter } from "../../src/rate-limit";
import { ReceiptWriter } from "../../src/receipts";
import { resolveLink, maskEmail, type LinkRow } from "./issue";
import { confirmPage, donePage, langOf, PAGE_HEADERS, problemPage } from "./pages";
import { linkKeyring } from "./token";

/** A one-click POST or the button's form is a few bytes. */
const POST_MAX_BYTES = 4 * 1024;

/** What the link channel keeps in `receipts.payload`; the interpreter reads the link row by `link`. */
export interface LinkReceiptPayload {
  link: number;
  via: "one-click" | "button";
}

/**
 * Per-IP counting for /r: the requests of one tick share one Redis round trip (`hitMany`), so the
 * limiter costs one script call per batch rather than one MULTI per request. Fails open like RateLimiter.
 */
class TickLimiter {
  private waiting: { subject: string; resolve(limited: boolean): void }[] = [];
  constructor(
    private readonly limiter: RateLimiter,
    private readonly perMinute: number,
    private readonly now: () => number,
  ) {}

  hit(subject: string): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.waiting.push({ subject, resolve }) === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.waiting;
    this.waiting = [];
    const flags = await this.limiter
      .hitMany(batch.map((w) => ({ name: "link-ip", subject: w.subject, limit: this.perMinute, windowMs: 60_000 })), this.now())
      .catch(() => batch.map(() => false));
    batch.forEach((w, i) => w.resolve(flags[i] ?? false));
  }
}

/**
 * `/r/<token>`: the e-mail rejection link.
 *
 * GET (and HEAD) only shows a page: mail security scanners and prefetchers open every link, so
 * nothing is written on GET — no receipt, no ledger event. The RET is recorded by a POST: the page's
 * button, or a mail client's RFC 8058 one-click POST (`List-Unsubscribe=One-Click`).
 *
 * CSRF is not a risk here: there are no cookies and no session. The unguessable, signed token in the
 * URL is the whole credential, so a forged cross-site POST needs the token — and whoever has the
 * token may refuse on that address anyway (that is what RFC 8058 asks of a one-click link).
 */
/**
 * `List-Unsubscribe=One-Click` as a form field or a multipart part, in any case, spacing or line
 * ending; the value ends there (`One-Click%20No` is another value).
 */
const ONE_CLICK_BODY = /(?:^|[&\s;"])List-Unsubscribe"?[ \t]*(?:=|\r?\n\r?\n)[ \t]*One-Click[ \t]*(?=$|[&\r\n])/i;

export function createLinkRoutes(deps: AppDeps) {
  const ring = linkKeyring(deps.config.LINK_KEYS, deps.secrets.derive);
  const limiter = new TickLimiter(new RateLimiter(deps.redis, deps.config.QUEUE_PREFIX), deps.config.LINK_LIMIT_PER_IP_PER_MINUTE, () => deps.clock.now().getTime());
  const writer = new ReceiptWriter(deps.db);
  const pending = new MicroBatcher<number>(
    (ids) => deps.jobs.enqueueReceipts(ids.map((id) => ({ id }))),
    (err, ids) => deps.log.warn({ receipts: ids.length, err: (err as Error).message }, "enqueue failed; the sweeper will retry"),
  );
  // The last consent (ONAY) of the address: part of the receipt's key (see below). Under either
  // recipient type: a click refuses the address's other record's consent too (withTacirRefusals), so
  // a consent given again under either after a click must make the next click a new refusal.
  const lastConsent = (link: LinkRow) =>
    (
      stmt<[number, string], { id: number | null }>(
        deps.db,
        `SELECT max(id) AS id FROM consent_events WHERE brand_id = ? AND recipient = ? AND type = 'EPOSTA' AND status = 'ONAY'`,
      ).get(link.brandId, link.recipient)?.id ?? null
    );

  // Once a request: the rate limiter (which lets a valid link's POST through) and the handler share it.
  const resolved = new WeakMap<Request, ReturnType<typeof resolveLink>>();
  const resolve = (c: Context<HonoEnv>) => {
    let found = resolved.get(c.req.raw);
    if (!found) {
      found = resolveLink(deps.db, ring, c.req.path.slice(c.req.path.lastIndexOf("/") + 1), deps.clock.now().getTime());
      resolved.set(c.req.raw, found);
    }
    return found;
  };

  return new Hono<HonoEnv>()
    .use("*", async function linkHeaders(c, next) {
      await next();
      for (const [k, v] of Object.entries(PAGE_HEADERS)) c.res.headers.set(k, v);
    })
    .use("*", async function linkRateLimit(c, next) {
      // A refusal on a valid link is never limited: RFC 8058 one-click POSTs come from a mailbox
      // provider's few servers, whose link scanners' GETs share their addresses, and the sender is
      // not asked to retry a 429. Recording is idempotent, so a repeated POST costs one lookup.
      if (c.req.method === "POST" && resolve(c).kind === "ok") return next();
      const ip = clientIp(c, deps.config.LINK_CLIENT_IP_HEADER);
      const limited = await limiter.hit(deps.secrets.pseudonym("rate-limit", ip));
      if (limited) return c.html(problemPage("rate_limited"), 429, { "Retry-After": "60" });
      await next();
    })
    .use("*", bodyLimit<HonoEnv>(POST_MAX_BYTES, (c) => c.html(problemPage("bad_request"), 413)))
    .get("/:token", (c) => {
      const found = resolve(c);
      if (found.kind !== "ok") return c.html(problemPage(found.kind === "expired" ? "expired" : "not_found"), found.kind === "expired" ? 410 : 404);
      const brand = brandById(deps.db, found.link.brandId);
      return c.html(confirmPage(langOf(c.req.query("lang")), brand?.name ?? "", maskEmail(found.link.recipient)));
    })
    .post("/:token", async (c) => {
      const found = resolve(c);
      if (found.kind !== "ok") return c.html(problemPage(found.kind === "expired" ? "expired" : "not_found"), found.kind === "expired" ? 410 : 404);
      const link = found.link;
      const type = (c.req.header("content-type") ?? "").toLowerCase();
      // At most POST_MAX_BYTES: read whole first, so that a body the form parsers cannot read is
      // still looked at (below).
      const raw = await c.req.text();
      let form: Record<string, unknown> = {};
      if (type.startsWith("application/x-www-form-urlencoded") || type.startsWith("multipart/form-data")) {
        try {
          form = await c.req.parseBody();
        } catch {
          form = {}; // a multipart body without its boundary, or not multipart at all
        }
      }
      // A mailbox provider's one-click POST is neither retried nor shown to anyone: a refusal lost to
      // a strict parser is lost for good. The URL is dedicated to refusal and its token is the whole
      // credential, so the field is read tolerantly, and a body the parsers did not read (no or
      // another Content-Type, a multipart without its boundary or with bare LF lines) by its shape.
      const field = form["List-Unsubscribe"];
      const oneClick =
        (typeof field === "string" && field.trim().toLowerCase() === "one-click") || (!type.startsWith("application/json") && ONE_CLICK_BODY.test(raw));
      if (!oneClick && form.action !== "RET") return c.html(problemPage("bad_request"), 400);

      // Repeated clicks are one receipt (and one RET): the key is the link plus the address's last
      // consent, so a click after a later re-consent is a new receipt and refuses again.
      const providerRef = `${link.linkId}:${lastConsent(link) ?? "none"}`;
      const payload: LinkReceiptPayload = { link: link.id, via: oneClick ? "one-click" : "button" };
      let receipt;
      try {
        receipt = await writer.record(
          { channel: "link", provider: "link", providerRef, fromAddress: link.recipient, payload: { ...payload } },
          deps.clock.now().getTime(),
        );
      } catch (err) {
        deps.log.error({ link: link.id, err: (err as Error).message }, "link receipt not recorded");
        return c.html(problemPage("unavailable"), 503, { "Retry-After": "30" });
      }
      if (receipt.created) deps.log.info({ receiptId: receipt.id, link: link.id, via: payload.via }, "link receipt");
      if (receipt.status === "received") pending.push(receipt.id);
      if (oneClick) return c.body(null, 200);
      const brand = brandById(deps.db, link.brandId);
      const lang = langOf(typeof form.lang === "string" ? form.lang : c.req.query("lang"));
      return c.html(donePage(lang, brand?.name ?? ""));
    })
    // A link asked with another method: not a page saying the link does not exist.
    .all("/:token", (c) => c.body(null, c.req.method === "OPTIONS" ? 204 : 405, { Allow: "GET, HEAD, POST" }))
    .all("*", (c) => c.html(problemPage("not_found"), 404));
}
