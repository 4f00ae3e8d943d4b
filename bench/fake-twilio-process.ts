/**
 * The fake Twilio REST API in its own process for the benchmarks: a real provider is another
 * machine, so its CPU must not be charged to the hub. Prints its URL; `GET /__sent?since=N` lists
 * what it accepted from the N-th message on, with the time it arrived.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { FakeTwilio } from "../test/fakes/sms-providers";

const [sid, token] = process.argv.slice(2) as [string, string];
const fake = new FakeTwilio(sid, token);
const arrivals: number[] = [];
const origin = await fake.start();
const sent = fake.sent;
const push = sent.push.bind(sent);
sent.push = (...items) => {
  for (const _ of items) arrivals.push(Date.now());
  return push(...items);
};
const stats = createServer((req, res) => {
  const since = Number(new URL(req.url ?? "/", "http://x").searchParams.get("since") ?? 0);
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ total: sent.length, sent: sent.slice(since).map((s, i) => ({ to: s.to, at: arrivals[since + i] })) }));
});
stats.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ api: origin, stats: `http://127.0.0.1:${(stats.address() as AddressInfo).port}` })));
