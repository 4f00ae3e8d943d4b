import { createHash } from "node:crypto";
import type { Child } from "hono/jsx";
import { formatIysDate } from "../domain/time";
import { UNREPORTED_DAYS, type Dashboard } from "./data";
import { queueStates } from "../metrics/index";

const CSS = `
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:14px;color:#1d2430;background:#f4f6f9}
body{margin:0}
header{display:flex;align-items:center;justify-content:space-between;gap:1rem;padding:.75rem 1.25rem;background:#1d2430;color:#fff}
header h1{font-size:1.1rem;margin:0}
header nav{display:flex;gap:1rem;align-items:center}
header a{color:#cfe0ff}
main{padding:1rem 1.25rem;display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr))}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:.75rem 1rem;overflow:auto}
section.wide{grid-column:1/-1}
h2{font-size:1rem;margin:.2rem 0 .6rem}
.tr{color:#5b6575;font-weight:normal}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eef1f5;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.err{white-space:normal;max-width:28rem;color:#8a1c12}
.empty{color:#5b6575}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.85em;background:#e8ecf2}
.RET,.past,.failed,.exhausted{background:#fbe3e0;color:#8a1c12}
.ONAY,.done{background:#e1f3e6;color:#1b5e2c}
.near,.pending,.skipped{background:#fff1cc;color:#6b4a00}
form.inline{display:inline;margin:0}
button{font:inherit;padding:.35rem .8rem;border:1px solid #9aa6b8;border-radius:4px;background:#fff;cursor:pointer}
.login{max-width:24rem;margin:10vh auto;background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:1.5rem}
.login label{display:block;margin:.75rem 0 .25rem}
.login input{width:100%;box-sizing:border-box;font:inherit;padding:.4rem}
.login button{margin-top:1rem;background:#1d2430;color:#fff}
.alert{color:#8a1c12;margin:.5rem 0}
`;

export const CSS_HASH = `sha256-${createHash("sha256").update(CSS).digest("base64")}`;

/** Dashboard and login: no scripts, no external sources, styles allowed by hash only. */
export const ADMIN_CSP = `default-src 'none'; style-src '${CSS_HASH}'; img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

const at = (ms: number | null) => (ms === null ? "—" : formatIysDate(new Date(ms)));
const T = (props: { en: string; tr: string }) => (
  <>
    {props.en} <span class="tr">/ {props.tr}</span>
  </>
);
/** A pull's state in the colours of a deadline's: late is near, losing and never are past. */
const PULL_CLASS = { ok: "done", late: "near", losing: "past", never: "past" } as const;
const Badge = (props: { v: string | null }) => (props.v ? <span class={`badge ${props.v}`}>{props.v}</span> : <span class="empty">—</span>);

function Layout(props: { title: string; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>{props.title}</title>
        <style dangerouslySetInnerHTML={{ __html: CSS }} />
      </head>
      <body>{props.children}</body>
    </html>
  );
}

export function LoginPage(props: { error?: string }) {
  return (
    <Layout title="Operator login · Operatör girişi">
      <form class="login" method="post" action="/admin/login">
        <h1>
          <T en="Operator login" tr="Operatör girişi" />
        </h1>
        {props.error ? (
          <p class="alert" role="alert">
            {props.error}
          </p>
        ) : null}
        <label for="key">
          <T en="Admin key" tr="Yönetici anahtarı" />
        </label>
        <input id="key" name="key" type="password" autocomplete="current-password" required />
        <button type="submit">Log in / Giriş</button>
      </form>
    </Layout>
  );
}

function Empty(props: { cols: number }) {
  return (
    <tr>
      <td colspan={props.cols} class="empty">
        None / Yok
      </td>
    </tr>
  );
}

export function DashboardPage(props: { d: Dashboard }) {
  const { d } = props;
  return (
    <Layout title="İYS hub · Operations">
      <header>
        <h1>
          <T en="İYS consent hub — operations" tr="operasyon" />
        </h1>
        <nav>
          <span>{at(d.now)} (İstanbul)</span>
          <a href="/admin">Refresh / Yenile</a>
          <a href="/admin/queues">Queues / Kuyruklar</a>
          <form class="inline" method="post" action="/admin/logout">
            <button type="submit">Log out / Çıkış</button>
          </form>
        </nav>
      </header>
      <main>
        <section id="deadlines" class="wide">
          <h2>
            <T en="Deadlines at risk: RETs with < 1 business day left or overdue, report or notification not done" tr="Süresi dolan / dolmak üzere olan RET bildirimleri" />
          </h2>
          <table>
            <thead>
              <tr>
                <th>State</th>
                <th>Event</th>
                <th>Brand</th>
                <th>Recipient</th>
                <th>Type</th>
                <th>Effect</th>
                <th>Received</th>
                <th>Deadline</th>
                <th>Pending work</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {d.deadlines.length === 0 ? <Empty cols={10} /> : null}
              {d.deadlinesNotShown > 0 ? (
                <tr>
                  <td colspan={10} class="err" id="deadlines-not-shown">
                    <T en={`… and ${d.deadlinesNotShown} older ones not shown`} tr={`… ve gösterilmeyen ${d.deadlinesNotShown} eski kayıt`} />
                  </td>
                </tr>
              ) : null}
              {d.deadlines.map((r) => (
                <tr>
                  <td>
                    <Badge v={r.state} />
                  </td>
                  <td class="num">{r.eventId}</td>
                  <td>{r.brand}</td>
                  <td>{r.recipient}</td>
                  <td>{r.type}</td>
                  <td>{r.effect}</td>
                  <td>{at(r.receivedAt)}</td>
                  <td>{at(r.deadline)}</td>
                  <td>
                    {r.kind} <Badge v={r.outboxStatus} />
                  </td>
                  <td class="err">{r.lastError ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>

        {d.unreported.length > 0 ? (
          <section id="unreported" class="wide">
            <h2>
              <T
                en="Not reported to İYS by the hub: these brands' movements must reach İYS within 3 business days by other means (İYS's panel or bulk upload)"
                tr="Hub'ın İYS'ye bildirmediği hareketler: 3 iş günü içinde İYS'ye başka yoldan iletilmeli"
              />
            </h2>
            <table>
              <thead>
                <tr>
                  <th>Brand</th>
                  <th>Why</th>
                  <th class="num">RETs due</th>
                  <th class="num">ONAYs due</th>
                  <th>Earliest deadline</th>
                  <th class="num">RETs past deadline ({UNREPORTED_DAYS} days)</th>
                </tr>
              </thead>
              <tbody>
                {d.unreported.map((r) => (
                  <tr data-brand={r.brand}>
                    <td>{r.brand}</td>
                    <td>{r.reason}</td>
                    <td class="num">{r.dueCapped ? "≥ " : ""}{r.refusalsDue}</td>
                    <td class="num">{r.dueCapped ? "≥ " : ""}{r.consentsDue}</td>
                    <td>{r.dueCapped && r.nextDeadline !== null ? "≤ " : ""}{at(r.nextDeadline)}</td>
                    <td class={r.refusalsPast > 0 ? "num err" : "num"}>{r.capped ? "≥ " : ""}{r.refusalsPast}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        ) : null}

        <section id="iys-pull">
          <h2>
            <T en="Movements on İYS: the pulls per brand, recipients' and the provider's own (İYS lists 7 days)" tr="İYS'deki izin hareketlerinin çekilmesi" />
          </h2>
          <table>
            <thead>
              <tr>
                <th>State</th>
                <th>Brand</th>
                <th>Movements of</th>
                <th>Last pulled</th>
                <th class="num">Movements</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {d.iysPull.length === 0 ? <Empty cols={6} /> : null}
              {d.iysPull.map((r) => (
                <tr data-pull={r.brand} data-source={r.source}>
                  <td>
                    <span class={`badge ${PULL_CLASS[r.state]}`}>{r.state}</span>
                  </td>
                  <td>{r.brand}</td>
                  <td>{r.source === "IYS" ? "recipients (IYS)" : "provider (HS)"}</td>
                  <td>{at(r.pulledAt)}</td>
                  <td class="num">{r.movements}</td>
                  <td class="err">{r.lastError ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>

        <section id="counts">
          <h2>
            <T en="Ledger events per brand and channel" tr="Marka ve kanala göre kayıtlar" />
          </h2>
          <table>
            <thead>
              <tr>
                <th>Brand</th>
                <th>Channel</th>
                <th class="num">ONAY</th>
                <th class="num">RET</th>
              </tr>
            </thead>
            <tbody>
              {d.brandCounts.length === 0 ? <Empty cols={4} /> : null}
              {d.brandCounts.map((r) => (
                <tr>
                  <td>{r.brand}</td>
                  <td>{r.origin}</td>
                  <td class="num">{r.onay}</td>
                  <td class="num">{r.ret}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>
            <T en="Receipts (inbound actions)" tr="Gelen talepler" />
          </h2>
          <table>
            <thead>
              <tr>
                <th>Channel</th>
                <th>Status</th>
                <th class="num">Count</th>
              </tr>
            </thead>
            <tbody>
              {d.receipts.length === 0 ? <Empty cols={3} /> : null}
              {d.receipts.map((r) => (
                <tr>
                  <td>{r.channel}</td>
                  <td>{r.status}</td>
                  <td class="num">{r.n}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>

        <section id="queues">
          <h2>
            <T en="Queue depths" tr="Kuyruk derinlikleri" />
          </h2>
          <table>
            <thead>
              <tr>
                <th>Queue</th>
                {queueStates.map((s) => (
                  <th class="num">{s}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {Object.keys(d.queues).length === 0 ? <Empty cols={5} /> : null}
              {Object.entries(d.queues).map(([name, c]) => (
                <tr>
                  <td>
                    {name}
                    {c?.paused ? (
                      <strong class="err" data-paused="true">
                        {" "}
                        paused / duraklatıldı
                      </strong>
                    ) : null}
                  </td>
                  {c ? (
                    queueStates.map((s) => (
                      <td class="num" data-state={s}>
                        {c[s]}
                      </td>
                    ))
                  ) : (
                    <td colspan={4} class="err">
                      Redis unreachable / Redis'e ulaşılamıyor
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          <p>
            <a href="/admin/queues">Open the queue board / Kuyruk panosunu aç</a>
          </p>
        </section>

        <section id="failures" class="wide">
          <h2>
            <T en="Outbox and delivery failures" tr="Başarısız gönderimler" />
          </h2>
          <table>
            <thead>
              <tr>
                <th>Source</th>
                <th class="num">Id</th>
                <th>Kind</th>
                <th>Target</th>
                <th>Status</th>
                <th class="num">Attempts</th>
                <th>At</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {d.failures.length === 0 ? <Empty cols={8} /> : null}
              {d.failures.map((f) => (
                <tr>
                  <td>{f.source}</td>
                  <td class="num">{f.id}</td>
                  <td>{f.kind}</td>
                  <td>{f.target ?? ""}</td>
                  <td>
                    <Badge v={f.status} />
                  </td>
                  <td class="num">{f.attempts}</td>
                  <td>{at(f.at)}</td>
                  <td class="err">{f.lastError ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>

        <section id="recent" class="wide">
          <h2>
            <T en="Last 50 events" tr="Son 50 kayıt" />
          </h2>
          <table>
            <thead>
              <tr>
                <th class="num">Id</th>
                <th>Received</th>
                <th>Brand</th>
                <th>Recipient</th>
                <th>Type</th>
                <th>Status</th>
                <th>Channel</th>
                <th>Effect</th>
                <th>İYS report</th>
              </tr>
            </thead>
            <tbody>
              {d.recent.length === 0 ? <Empty cols={9} /> : null}
              {d.recent.map((e) => (
                <tr data-event={e.id}>
                  <td class="num">{e.id}</td>
                  <td>{at(e.receivedAt)}</td>
                  <td>{e.brand}</td>
                  <td>{e.recipient}</td>
                  <td>{e.type}</td>
                  <td>
                    <Badge v={e.status} />
                  </td>
                  <td>{e.origin}</td>
                  <td>{e.effect}</td>
                  <td>
                    <Badge v={e.iys} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      </main>
    </Layout>
  );
}
