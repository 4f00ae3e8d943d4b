import { isAscii, isUtf8 } from "node:buffer";
import { randomUUID } from "node:crypto";
import { CsvError, Parser } from "csv-parse";
import { stmt, type Db } from "../db/index";
import type { ActionOutcome, ConsentAction, Ledger, OutboxRef, PlanHead } from "../db/ledger";
import { LedgerWriter, type WriteResult } from "../db/ledger-writer";
import { statementToAction } from "./consents";
import { hasTrunkZero } from "./domain/address";
import { iysBatchPlanner } from "./iys-reports";
import { consentSources, consentStatuses, consentTypes, isIysSourceName, recipientTypes, type ConsentSource, type ConsentStatus, type ConsentType, type RecipientType } from "./domain/consent";
import type { Clock } from "./domain/time";

/** The İYS bulk columns, in the order the rejected-rows CSV and exports use. */
export const IMPORT_COLUMNS = ["type", "recipient", "status", "source", "consentDate", "recipientType", "retailerCode"] as const;
/** recipientType defaults to BIREYSEL and retailerCode to none; every other column must be in the header. */
export const REQUIRED_COLUMNS = ["type", "recipient", "status", "source", "consentDate"] as const;
/**
 * An optional column of the hub's state export: `held` (İYS holds the record), `not_held` (its
 * report was on its way, or İYS refused it), `not_sent`. With --registered, a `not_held` row is an
 * ordinary movement (reported to İYS, within its 3 business days): it is not taken as İYS's record.
 */
export const STATE_IYS_COLUMN = "iys";
export const REJECTED_COLUMNS = [...IMPORT_COLUMNS, "line", "code", "message"] as const;

/**
 * The file itself is unusable (no header, missing columns, broken CSV). A file broken past its
 * first rows names the import (`importId`, its record marked failed) that holds the rows before the
 * break: they are in the ledger; nothing after it is. Sending the fixed file again changes nothing
 * for those (an import is idempotent) and records the rest.
 */
export class ImportFormatError extends Error {
  constructor(
    message: string,
    readonly missing: string[] = [],
    readonly importId: string | null = null,
  ) {
    super(message);
    this.name = "ImportFormatError";
  }
}

/** The body went past ImportOptions.maxBytes (a chunked upload has no Content-Length to refuse it by); the rows before are kept, as for a broken file. */
export class ImportTooLargeError extends ImportFormatError {
  override name = "ImportTooLargeError";
}

export interface ImportDeps {
  db: Db;
  ledger: Ledger;
  clock: Clock;
  /** Enqueues the İYS reports (and other outbox work) of the recorded movements; failures are the sweeper's to retry. */
  enqueueOutbox(rows: OutboxRef[]): Promise<void>;
}

export interface ImportCounts {
  rowsRead: number;
  recorded: number;
  /** Rows already in the ledger (a re-run of the same file, or the same row twice). */
  unchanged: number;
  rejected: number;
  bytesRead: number;
  bytesTotal: number | null;
}

export interface ImportSummary extends ImportCounts {
  id: string;
  status: "done";
  registered: boolean;
  /** Rejected rows per İYS code. */
  codes: Record<string, number>;
  seconds: number;
  /** How the file's bytes were read: UTF-8, UTF-16LE (with its byte-order mark: Excel's "Unicode text"), or Windows-1254 (a Turkish Excel's plain "CSV"). */
  encoding: ImportEncoding;
}

export type ImportEncoding = "utf-8" | "utf-16le" | "windows-1254";

export interface RejectedRow {
  line: number;
  /** The row's values as given, in IMPORT_COLUMNS order ('' where the file has no such column). */
  fields: string[];
  code: string;
  message: string;
}

export interface ImportOptions {
  brandId: number;
  via: "cli" | "api";
  /**
   * The rows are records İYS already holds (the provider's base registered before the hub, another
   * hub's state export): for a key the hub holds nothing of, checked by the İYS rules except the
   * 3-business-day window and recorded with origin `registered`, never reported (a consent as held
   * by İYS, a refusal as a local suppression), and so for a key whose record registered rows made
   * (a key's history in the file). Over a record of the hub's own, a row is an ordinary import
   * movement (Ledger.apply).
   */
  registered?: boolean;
  bytesTotal?: number | null;
  /** The most bytes the file may have: past it the import stops (ImportTooLargeError). */
  maxBytes?: number;
  /**
   * Rows per ledger transaction (default 5000). Measured on 1M rows with no random-ordered index
   * left on the import path: 5000 to 100 000 within noise of each other; larger costs memory.
   */
  batchSize?: number;
  /** Called once the header is accepted and the import record exists, with the file's field separator. */
  onStart?(id: string, delimiter: string): void;
  onProgress?(counts: ImportCounts): void;
  /** Every rejected row, in file order (the CLI writes them to its CSV). */
  onRejected?(row: RejectedRow): void;
  /**
   * Whether large batches are written by a thread of their own (db/ledger-writer.ts) while the next
   * is read; default true (an in-memory database has none, and while the process runs
   * LedgerWriter.MAX_THREADS of them batches go through Ledger.apply). False: every batch through Ledger.apply.
   */
  writerThread?: boolean;
  /** How often a running import says it is alive (its `updated_at`), default IMPORT_HEARTBEAT_MS. */
  heartbeatMs?: number;
}

/**
 * A running import bumps its `updated_at` this often, however slowly its rows come (an upload from
 * a slow client); one not bumped for IMPORT_STALE_MS was interrupted (its process died: a crash, a
 * kill -9) and the sweeper marks it failed, so a client polling it learns to send the file again
 * (it stayed `running` for ever).
 */
export const IMPORT_HEARTBEAT_MS = 20_000;
export const IMPORT_STALE_MS = 120_000;

/** Marks failed the imports whose process stopped (no heartbeat for IMPORT_STALE_MS); their ids. */
export function failInterruptedImports(db: Db, now: number): string[] {
  const stale = db.$client
    .prepare(`SELECT id, recorded, unchanged, rejected, rows_read AS rowsRead, updated_at AS updatedAt FROM imports WHERE status = 'running' AND updated_at < ?`)
    .all(now - IMPORT_STALE_MS) as { id: string; recorded: number; unchanged: number; rejected: number; rowsRead: number; updatedAt: number }[];
  const fail = stmt(db, `UPDATE imports SET status = 'failed', error = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status = 'running' AND updated_at = ?`);
  return stale
    .filter(
      (r) =>
        fail.run(
          `interrupted: the process running it stopped (no sign of it since ${new Date(r.updatedAt).toISOString()}); the ${r.rowsRead} rows read before are in (recorded ${r.recorded}, unchanged ${r.unchanged}, rejected ${r.rejected}): send the file again (rows already in stay unchanged)`,
          now, now, r.id, r.updatedAt,
        ).changes === 1,
    )
    .map((r) => r.id);
}

const messages = {
  H110: "Durum (status) bulunamadı.",
  H111: "İzin tipi (type) bulunamadı.",
  H114: "Alıcı (recipient) bulunamadı.",
  H115: "Durum (status) için uygun değerler: ONAY, RET",
  H116: "Alıcı tipi (recipientType) için uygun değerler: BIREYSEL, TACIR",
  H117: "İzin tipi (type) için uygun değerler: ARAMA, MESAJ, EPOSTA",
  H180: "Bayi İYS numarası (retailerCode) 8 haneli olmalıdır.",
  // What İYS answers a value outside its list (the specification's 422 examples invalidSource and OneConsentRequestInvalidSource).
  H119: "İzin kaynağı (source) için uygun değerler: HS_FIZIKSEL_ORTAM, HS_ISLAK_IMZA, HS_WEB, HS_CAGRI_MERKEZI, HS_SOSYAL_MEDYA, HS_EPOSTA, HS_MESAJ, HS_MOBIL, HS_EORTAM, HS_ETKINLIK, HS_2015, HS_ATM, HS_KARAR",
  H467_HINT:
    "Üç iş günü öncesinde alınan izinler kaydedilemez. Bu izin İYS'ye daha önce kaydedildiyse (hub'dan önceki kayıtlar, başka bir hub'ın durum dökümü) registered kipinde yüklenir: hub import --registered, POST /api/v1/imports?registered=true. İYS'ye hiç kaydedilmemiş eski bir izin yüklenemez.",
  H121_TRUNK_ZERO:
    "İYS'de +9005… biçiminde kayıtlı bir onay operatörlerce bulunamaz (operatörler +905… biçimini sorgular; İYS Vatandaş uygulamasında da görünmez): bu onay İYS'de kayıtlı sayılamaz, +905… biçiminde İYS'ye yeniden kaydedilmelidir (dosyadan: registered kipi olmadan yükleyin).",
  H467_NOT_HELD:
    "İYS bu izni tutmuyor (durum dökümünde iys=not_held: İYS'ye bildirilmemiş ya da İYS reddetmiş) ve izin 3 iş gününden eski: İYS'ye yeni hareket olarak kaydedilemez. İYS'de kayıtlıysa iys sütununu held yapın.",
  H486_IYS_ONAY:
    "İYS kaynaklı (IYS_*) onaylar dosyadan alınmaz: alıcıların İYS'de verdiği izinleri hub İYS'den çeker. İYS kaynaklı retler (ör. başka bir hub'ın durum dökümü) alınır.",
} as const;

/**
 * The list's own string equal to `v`, or undefined. An action keeps its enumerations as the lists'
 * strings, not as the ones split out of its line: those would live as long as the action (until
 * its batch is written), through the scavenges of a batch, and be copied into the old generation
 * with it — a million-row import's largest share of what it promoted.
 */
const oneOf = <T extends string>(list: readonly T[], v: string): T | undefined => {
  const i = (list as readonly string[]).indexOf(v);
  return i === -1 ? undefined : list[i];
};

type RowResult = { ok: true; action: ConsentAction } | { ok: false; code: string; message: string };

/**
 * A row in the İYS bulk columns (IMPORT_COLUMNS order) checked and normalised into a ledger action
 * of `origin`, deduplicated by content; the İYS code of the first thing wrong otherwise.
 */
export function rowToAction(f: string[], brandId: number, origin: "import" | "registered" | "iys" = "import"): RowResult {
  const [typeText, recipient, statusText, sourceText, consentDate, recipientType, retailerCode] = f as [string, string, string, string, string, string, string];
  if (!typeText) return { ok: false, code: "H111", message: messages.H111 };
  const type = oneOf(consentTypes, typeText);
  if (!type) return { ok: false, code: "H117", message: messages.H117 };
  if (!recipient) return { ok: false, code: "H114", message: messages.H114 };
  if (!statusText) return { ok: false, code: "H110", message: messages.H110 };
  const status = oneOf(consentStatuses, statusText);
  if (!status) return { ok: false, code: "H115", message: messages.H115 };
  const rType = oneOf(recipientTypes, recipientType || "BIREYSEL");
  if (!rType) return { ok: false, code: "H116", message: messages.H116 };
  // İYS's own records: listed by İYS's pull (origin iys), or in a state export of a hub that pulled
  // them. A refusal in such a file is İYS's refusal (a recipient's İYS refusals must survive a move to
  // another hub: İYS lists only its last 7 days); a consent of İYS's is taken from İYS itself, never
  // from a file, since it would then be sent on unverified.
  const fromIys = isIysSourceName(sourceText);
  const source = fromIys ? sourceText : oneOf(consentSources, sourceText);
  if (sourceText && !source) return { ok: false, code: "H119", message: messages.H119 };
  if (fromIys && origin !== "iys" && status !== "RET") return { ok: false, code: "H486", message: messages.H486_IYS_ONAY };
  if (retailerCode && !/^\d{8}$/.test(retailerCode)) return { ok: false, code: "H180", message: messages.H180 };
  const r = statementToAction({
    brandId,
    recipient,
    recipientType: rType,
    type,
    status,
    source: (source || null) as ConsentSource | null,
    consentDate: consentDate || null,
    retailerCode: retailerCode || null,
    origin,
  }, "content");
  if (!r.ok) return { ok: false, code: r.code, message: r.message };
  // A consent İYS holds under +9005… is no consent operators see (the specification's note on the
  // phone format): not to be taken as one the hub need not report. A refusal is honoured all the same.
  if (origin !== "import" && status === "ONAY" && hasTrunkZero(recipient)) {
    return { ok: false, code: "H121", message: messages.H121_TRUNK_ZERO };
  }
  // İYS holds it already: checked as İYS's record (no 3-business-day window) and never reported back.
  if (fromIys) r.action.writer = "iys";
  // The provider says İYS holds it (its base registered before the hub): no window, never reported.
  else if (origin === "registered") r.action.writer = "registered";
  return r;
}

/** Maps header names (case-insensitive, trimmed) to IMPORT_COLUMNS positions; throws naming missing columns. */
export function columnIndexes(header: string[]): number[] {
  const names = header.map((h) => h.trim().toLowerCase());
  const idx = IMPORT_COLUMNS.map((c) => names.indexOf(c.toLowerCase()));
  const twice = IMPORT_COLUMNS.filter((c, i) => idx[i] !== -1 && names.lastIndexOf(c.toLowerCase()) !== idx[i]);
  if (twice.length) {
    throw new ImportFormatError(`the header row names the column${twice.length > 1 ? "s" : ""} ${twice.join(", ")} twice: which one holds the values cannot be told`, twice);
  }
  const missing = REQUIRED_COLUMNS.filter((c) => idx[IMPORT_COLUMNS.indexOf(c)] === -1);
  if (missing.length) {
    // One cell holding tabs: a tab-separated file (a spreadsheet's "Text" export).
    const tabs = header.length === 1 && header[0]!.includes("\t") ? "; fields must be separated by , or ; (this header is separated by tabs)" : "";
    throw new ImportFormatError(
      `the header row lacks the column${missing.length > 1 ? "s" : ""} ${missing.join(", ")} (required: ${REQUIRED_COLUMNS.join(", ")}; optional: recipientType, retailerCode)${tabs}`,
      missing,
    );
  }
  return idx;
}

const NEEDS_QUOTES = /[",;\r\n]/;
/** A CSV field, quoted when it holds a quote, a line break or a separator (`,` or `;`, whichever the file uses). */
export const csvField = (v: string | number | null | undefined) => {
  const s = v === null || v === undefined ? "" : String(v);
  return NEEDS_QUOTES.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};
export const csvLine = (values: (string | number | null | undefined)[], delimiter = ",") => `${values.map(csvField).join(delimiter)}\n`;

/**
 * The rejected-rows CSV is separated as the file was (a Turkish-locale spreadsheet's `;` file opens
 * as one column otherwise), and starts with UTF-8's byte-order mark: without it Excel reads the file
 * in the system's code page, and every ş, ı, ğ of the rows came out garbled (the file is UTF-8,
 * whatever the imported one was). Imports, csv-parse and Python's utf-8-sig read past it.
 * A pipe or a terminal (`--rejected /dev/stdout | cut …`) gets no mark: `bom: false`.
 */
export const rejectedCsvHeader = (delimiter = ",", bom = true) => `${bom ? "\uFEFF" : ""}${csvLine([...REJECTED_COLUMNS], delimiter)}`;
// What a spreadsheet would run as a formula: = or @ first, or + or - before anything but a number
// (a phone such as +90 532 123 45 67 stays as it is).
const FORMULA = /^(?:[=@\t\r]|[+-](?![\d\s().-]*$))/;

/**
 * A rejected field as given, unless a spreadsheet would take it for a formula (the file is made to
 * be opened in one, and a rejected row is whatever the file held: `=HYPERLINK(…)`): then with a
 * leading apostrophe, which shows it as text (OWASP's advice for CSV injection).
 */
export const spreadsheetSafe = (v: string) => (FORMULA.test(v) ? `'${v}` : v);

export const rejectedCsvLine = (r: RejectedRow, delimiter = ",") => csvLine([...r.fields.map(spreadsheetSafe), r.line, r.code, r.message], delimiter);

/**
 * A row of the bulk columns is well under a kilobyte: a line (bytes) or a record (characters, a
 * quoted field may span lines) longer than this is a broken or foreign file, refused before it is held.
 */
const MAX_ROW = 64 * 1024;

/** The file is not CSV rows at all (a line too long to be one); thrown before the parser holds it. */
class NotRowsError extends Error {}

/** The file went past ImportOptions.maxBytes. */
class TooLargeError extends Error {}

/** A chunk of the source as a Buffer (a view, not a copy, of a Uint8Array). */
const asBuffer = (chunk: Uint8Array | string): Buffer =>
  typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);

const sizeText = (bytes: number) => (bytes % 2 ** 30 === 0 ? `${bytes / 2 ** 30} GiB` : `${bytes} bytes`);

/** The source itself failed part way (an upload cut by its client, a file that cannot be read further). */
class SourceCutError extends Error {}

/** The source's chunks; its own failure as a SourceCutError (told apart from what the import throws). */
async function* cutsNamed(source: AsyncIterable<Uint8Array | string>) {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      let step: IteratorResult<Uint8Array | string>;
      try {
        step = await it.next();
      } catch (err) {
        finished = true;
        throw new SourceCutError(err instanceof Error ? err.message : String(err));
      }
      if (step.done) {
        finished = true;
        return;
      }
      yield step.value;
    }
  } finally {
    // Left early (a refused header, a break): close the source, as for await would.
    if (!finished) await it.return?.();
  }
}

/**
 * Counts the bytes read, and stops at a line longer than MAX_ROW: csv-parse's
 * max_record_size counts field characters only, so a line of delimiters (millions of empty fields)
 * would otherwise be held whole.
 */
async function* counted(source: AsyncIterable<Uint8Array | string>, counts: { bytesRead: number }, maxBytes = Number.POSITIVE_INFINITY) {
  let sinceNewline = 0;
  const tooLong = () => new NotRowsError(`a line is longer than ${MAX_ROW} bytes`);
  for await (const raw of cutsNamed(source)) {
    const chunk = asBuffer(raw);
    const length = chunk.byteLength;
    counts.bytesRead += length;
    if (counts.bytesRead > maxBytes) throw new TooLargeError(`an import is at most ${sizeText(maxBytes)}; split the file`);
    const first = chunk.indexOf(10);
    if (first === -1) {
      sinceNewline += length;
      if (sinceNewline > MAX_ROW) throw tooLong();
    } else {
      if (sinceNewline + first > MAX_ROW) throw tooLong();
      // Only a chunk longer than the limit can hold a whole line that is.
      for (let at = first; length > MAX_ROW && at !== -1; ) {
        const next = chunk.indexOf(10, at + 1);
        if ((next === -1 ? length : next) - at - 1 > MAX_ROW) throw tooLong();
        at = next;
      }
      sinceNewline = length - chunk.lastIndexOf(10) - 1;
    }
    yield raw;
  }
}

/** Where an incomplete UTF-8 sequence at the end of `buf` starts (buf.length when none). */
function incompleteUtf8Tail(buf: Buffer): number {
  for (let i = buf.length - 1; i >= 0 && i >= buf.length - 4; i--) {
    const b = buf[i]!;
    if (b < 0x80) return buf.length;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return buf.length - i < need ? i : buf.length;
    }
  }
  return buf.length;
}

/** The offset of the first byte of `buf` that is not part of a well-formed UTF-8 sequence. */
function firstNonUtf8(buf: Buffer): number {
  for (let i = 0; i < buf.length; ) {
    const b = buf[i]!;
    const need = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (need === 0 || !isUtf8(buf.subarray(i, i + need))) return i;
    i += need;
  }
  return buf.length;
}

const WINDOWS_1254 = new TextDecoder("windows-1254");

/**
 * The file's bytes as UTF-8. A file that is not UTF-8 and whose bytes before the first one that
 * cannot be UTF-8 were all ASCII is read as Windows-1254: what Excel under a Turkish Windows saves
 * as plain "CSV" (ş, ı, ğ, İ, ç, ö, ü as single bytes, none of them valid UTF-8 where they stand).
 * Read as UTF-8, each became U+FFFD and the row was refused as an invalid address. The ASCII bytes
 * before the switch read the same in both, so no row is read twice or differently. A file that has
 * valid UTF-8 text (or a UTF-8 byte-order mark) and later bytes that are not is refused: it mixes
 * two encodings, and either reading would change some of its rows. UTF-16 with its byte-order mark
 * goes through as it is (csv-parse decodes it).
 */
async function* asUtf8(source: AsyncIterable<Uint8Array | string>, found: { encoding: ImportEncoding }) {
  let mode: "unknown" | "as-is" | "windows-1254" = "unknown";
  let carry: Buffer | null = null;
  /** Whether a character of more than one byte was read as UTF-8 (a byte-order mark included). */
  let sawUtf8 = false;
  /** Bytes of the source up to the end of the chunk being converted. */
  let offset = 0;
  // The file's first chunk (with at least its first 4 bytes, however they are chunked) decides
  // whether it is text to read at all: UTF-16 with its byte-order mark goes to csv-parse as it is,
  // and a workbook or text with NUL bytes goes to notCsvText as it is, which names it by its bytes.
  let head: Buffer[] | null = [];
  let headLength = 0;

  function* convert(chunk: Buffer): Generator<Buffer> {
    offset += chunk.length;
    if (mode === "as-is") return yield chunk;
    if (mode === "windows-1254") return yield Buffer.from(WINDOWS_1254.decode(chunk), "utf8");
    const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    carry = null;
    if (isAscii(buf)) return yield buf;
    // A lead byte at the end may be a character's first byte, cut by the chunk: held for the next.
    const cut = incompleteUtf8Tail(buf);
    const whole = buf.subarray(0, cut);
    if (cut < buf.length) carry = Buffer.from(buf.subarray(cut));
    if (isUtf8(whole)) {
      if (!isAscii(whole)) sawUtf8 = true;
      if (whole.length) yield whole;
      return;
    }
    const bad = firstNonUtf8(whole);
    if (sawUtf8 || !isAscii(whole.subarray(0, bad))) {
      // UTF-8 characters before it: neither reading is the file's. The lines before the byte are
      // read, as before a break anywhere else in a file.
      carry = null;
      const lineEnd = whole.lastIndexOf(LF, bad);
      if (lineEnd !== -1) yield whole.subarray(0, lineEnd + 1);
      throw new NotRowsError(`the file mixes encodings: it has UTF-8 text, then bytes that are not UTF-8 (at byte ${offset - buf.length + bad + 1}): ${SAVE_AS_CSV}`);
    }
    mode = "windows-1254";
    found.encoding = "windows-1254";
    carry = null;
    yield Buffer.from(WINDOWS_1254.decode(buf), "utf8");
  }

  function* begin(first: Buffer): Generator<Buffer> {
    if (!looksLikeText(first)) mode = "as-is";
    if (first[0] === 0xff && first[1] === 0xfe) found.encoding = "utf-16le";
    yield* convert(first);
  }

  for await (const raw of source) {
    if (typeof raw === "string") {
      if (head) {
        const first = Buffer.concat(head);
        head = null;
        if (first.length) yield* begin(first);
      }
      yield raw;
      continue;
    }
    const chunk = asBuffer(raw);
    if (head) {
      head.push(Buffer.from(chunk));
      headLength += chunk.length;
      if (headLength < 4) continue;
      const first = Buffer.concat(head);
      head = null;
      yield* begin(first);
      continue;
    }
    yield* convert(chunk);
  }
  if (head) {
    const first = Buffer.concat(head);
    head = null;
    if (first.length) yield* begin(first);
  }
  if (carry) {
    // Bytes held at the very end: a Windows-1254 letter ("…Ataş") when nothing was read as UTF-8;
    // otherwise a UTF-8 character cut by the end of the file, which the parser reads as U+FFFD.
    const last: Buffer = carry;
    if (mode === "unknown" && !sawUtf8) {
      found.encoding = "windows-1254";
      yield Buffer.from(WINDOWS_1254.decode(last), "utf8");
    } else yield last;
  }
}

/** Whether the file's first bytes may be 8-bit text: not UTF-16 (a byte-order mark, or NUL bytes), nor a workbook. */
function looksLikeText(b: Buffer): boolean {
  if (b.length >= 2 && ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff))) return false;
  if (b.length >= 4 && (b.readUInt32BE(0) === 0x504b0304 || b.readUInt32BE(0) === 0xd0cf11e0)) return false;
  return !b.subarray(0, 4096).includes(0);
}

/**
 * csv-parse driven by hand: each record is kept, with the line it ends on (`info.lines` when it is
 * pushed), as the parser pushes it, instead of going to the stream's buffer. A chunk's records are
 * therefore all there when the chunk's write answers, even when the chunk then breaks the file (the
 * stream would drop the records it held, rows the import's message says it has).
 */
class RecordingParser extends Parser {
  records: [number, string[]][] = [];
  override push(record: unknown, encoding?: BufferEncoding): boolean {
    if (record === null) return super.push(null, encoding);
    this.records.push([this.info.lines, record as string[]]);
    return true;
  }
  /** Parses a chunk (or, with none, the end of the input); rejects with csv-parse's error. */
  feed(chunk?: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (chunk) this.write(chunk, done);
      else {
        this.once("error", reject);
        this.end(() => resolve());
      }
    });
  }
  drainRecords(): [number, string[]][] {
    const out = this.records;
    this.records = [];
    return out;
  }
}

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
/** A first byte past ASCII may start a BOM (UTF-8 EF BB BF, UTF-16LE FF FE), which csv-parse reads (bom: true). */
const ASCII_MAX = 0x7f;

/**
 * A chunk of csvRecords' records. `lines`: for records split here, each one's line as read (the
 * record is exactly that line split at the delimiter); none for csv-parse's.
 */
export type RecordChunk = [number, string[]][] & { lines?: string[] };

/**
 * The file's records, `[line, fields]` as csv-parse gives them (relax_column_count, skip_empty_lines,
 * a BOM dropped), a chunk's worth at a time. Lines without quotes or carriage returns (what exports
 * and generated files hold) are split here: csv-parse costs ~5 µs a row, about a tenth of an
 * import's time. From the first chunk that has either, the rest of the file goes through csv-parse
 * itself, told the record delimiter it would have found on the first line ("\n").
 */
export async function* csvRecords(source: AsyncIterable<Uint8Array | string>, delimiter: string): AsyncGenerator<RecordChunk> {
  const it = source[Symbol.asyncIterator]();
  let lines = 0; // lines ended so far
  // The bytes of a line not ended yet (already checked: no quote, no CR), kept as they came: a line
  // arriving a byte at a time is joined once, not once a byte.
  let partial: Buffer[] = [];
  let fallback: Buffer | null = null;
  try {
    for (let next = await it.next(); !next.done; next = await it.next()) {
      const chunk = asBuffer(next.value);
      if (chunk.length === 0) continue;
      // A file that may start with a BOM (csv-parse drops it or decodes UTF-16 by it), quotes, CR: csv-parse from here on.
      const atStart = lines === 0 && partial.length === 0;
      if ((atStart && chunk[0]! > ASCII_MAX) || chunk.includes(QUOTE) || chunk.includes(CR)) {
        fallback = Buffer.concat([...partial, chunk]);
        break;
      }
      const end = chunk.lastIndexOf(LF);
      if (end === -1) {
        partial.push(Buffer.from(chunk));
        continue;
      }
      const data = partial.length ? Buffer.concat([...partial, chunk.subarray(0, end)]) : chunk.subarray(0, end);
      partial = end + 1 < chunk.length ? [Buffer.from(chunk.subarray(end + 1))] : [];
      const batch: RecordChunk = [];
      batch.lines = [];
      for (const text of data.toString("utf8").split("\n")) {
        lines++;
        if (text === "") continue;
        batch.push([lines, text.split(delimiter)]);
        batch.lines.push(text);
      }
      if (batch.length) yield batch;
    }
    if (!fallback) {
      // The last line, without its newline.
      if (partial.length) yield [[lines + 1, Buffer.concat(partial).toString("utf8").split(delimiter)]];
      return;
    }
    const first = lines === 0;
    const parser = new RecordingParser({
      bom: first,
      relax_column_count: true,
      skip_empty_lines: true,
      delimiter,
      max_record_size: MAX_ROW,
      ...(first ? {} : { record_delimiter: "\n" }),
    });
    // Its own error events are the feeds' rejections.
    parser.on("error", () => {});
    parser.resume();
    try {
      // The lines split so far as empty lines (skipped, counted): csv-parse's line numbers, in
      // records and in its error messages, are then the file's.
      for (let left = lines; left > 0; left -= 65_536) await parser.feed(Buffer.alloc(Math.min(left, 65_536), LF));
      for (let data: Buffer | null = fallback; data; ) {
        await parser.feed(data);
        const batch = parser.drainRecords();
        if (batch.length) yield batch;
        const next = await it.next();
        data = next.done ? null : asBuffer(next.value);
      }
      await parser.feed();
      const last = parser.drainRecords();
      if (last.length) yield last;
    } catch (err) {
      // The records before the break, then the break.
      const before = parser.drainRecords();
      if (before.length) yield before;
      throw err;
    } finally {
      parser.destroy();
    }
  } finally {
    // Stopped early (a broken CSV, a refused header, a failed write): the source is closed as a for-await would close it.
    await Promise.resolve(it.return?.()).catch(() => {});
  }
}

/**
 * "," unless the header row has ";" and no "," outside quotes (what Excel writes under a Turkish
 * locale), or what an Excel `sep=;` first line says (`sepLine`: that line is no header); the chunks
 * read to find out are given back in front of the rest. A file that is no CSV text at all (a
 * workbook, UTF-16 without a byte-order mark, JSON Lines) is refused here saying what it is, not as
 * a header lacking its columns.
 */
async function sniffDelimiter(source: AsyncIterable<Uint8Array | string>): Promise<{ delimiter: string; sepLine: boolean; chunks: AsyncIterable<Uint8Array | string> }> {
  const it = source[Symbol.asyncIterator]();
  const seen: (Uint8Array | string)[] = [];
  let head = "";
  while (!head.includes("\n") && head.length < 64 * 1024) {
    const next = await it.next();
    if (next.done) break;
    seen.push(next.value);
    head += typeof next.value === "string" ? next.value : asBuffer(next.value).toString("utf8");
  }
  const problem = notCsvText(Buffer.concat(seen.map((c) => (typeof c === "string" ? Buffer.from(c) : asBuffer(c)))), head);
  if (problem) {
    await it.return?.();
    throw new ImportFormatError(problem);
  }
  const [first = "", second = ""] = head.split("\n");
  const sep = /^(?:\uFEFF)?sep=(.)\r?$/i.exec(first);
  const header = (sep ? second : first).replace(/"[^"]*"/g, "");
  const delimiter = sep ? sep[1]! : header.includes(";") && !header.includes(",") ? ";" : ",";
  if (delimiter !== "," && delimiter !== ";") {
    await it.return?.();
    throw new ImportFormatError(`the first line (sep=${delimiter}) says fields are separated by ${JSON.stringify(delimiter)}: they must be separated by , or ;`);
  }
  async function* chunks() {
    try {
      yield* seen;
      for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
    } finally {
      // Stopped early (a broken CSV, a failed write): the source is closed as a for-await would close it.
      await it.return?.();
    }
  }
  return { delimiter, sepLine: sep !== null, chunks: chunks() };
}

const SAVE_AS_CSV = "save it as CSV UTF-8 (Excel: Farklı Kaydet → CSV UTF-8 (Virgülle ayrılmış))";

/** What the file is instead of CSV text, from its first bytes; null when it may be CSV. */
function notCsvText(bytes: Buffer, head: string): string | null {
  if (bytes.length >= 4 && bytes.readUInt32BE(0) === 0x504b0304) return `the file is a ZIP archive (an Excel .xlsx workbook?), not CSV text: ${SAVE_AS_CSV}`;
  if (bytes.length >= 4 && bytes.readUInt32BE(0) === 0xd0cf11e0) return `the file is an old Excel workbook (.xls), not CSV text: ${SAVE_AS_CSV}`;
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) return `the file is UTF-16 big-endian text: ${SAVE_AS_CSV}`;
  // UTF-16 little-endian with its byte-order mark is read (csv-parse decodes it); without one, every other byte is 0.
  if (!(bytes[0] === 0xff && bytes[1] === 0xfe) && bytes.subarray(0, 4096).includes(0)) {
    return `the file holds NUL bytes: UTF-16 text without a byte-order mark, or not text at all: ${SAVE_AS_CSV}`;
  }
  if (/^(?:\uFEFF)?\s*[{[]/.test(head)) return "the file is JSON (an export made with --format jsonl?), not CSV: imports take CSV (hub export --format csv)";
  return null;
}

/** csv-parse's message without the field values it quotes (a phone number's digits, a binary file's bytes). */
function csvProblem(err: CsvError, lastLine: number): string {
  if (err.code === "CSV_MAX_RECORD_SIZE") return `a record is longer than ${MAX_ROW} characters ${/at line \d+/.exec(err.message)?.[0] ?? ""}`.trim();
  // csv-parse names the line it stopped on, the file's end: the quote was opened after the last whole record.
  if (err.code === "CSV_QUOTE_NOT_CLOSED") return lastLine === 0 ? "a quote opened in the header row is never closed" : `a quote opened after line ${lastLine} is never closed`;
  return err.message.replace(/,? value is .*$/s, "").replace(/got "(?:[^"\\]|\\.)*"/g, "got a character");
}

/** Rows read since the last write: the ledger's actions (with their rows), the rows refused before it, and how far the file had been read. */
interface Batch {
  actions: ConsentAction[];
  rows: PendingRow[];
  rejections: RejectedRow[];
  /** Lines taken as ordinary movements for their `iys` column (not_held) in a --registered import. */
  notHeld: Set<number>;
  rowsRead: number;
  bytesRead: number;
}

/** What the ledger made of a batch (Judged.rejected: with the rows refused before it, in line order). */
interface Judged {
  recorded: number;
  unchanged: number;
  rejected: RejectedRow[];
}

const newBatch = (): Batch => ({ actions: [], rows: [], rejections: [], notHeld: new Set(), rowsRead: 0, bytesRead: 0 });

/** Batches of at least this many actions go through Ledger.plan and the writer thread (smaller ones: Ledger.apply; plan declines them). */
const PLAN_MIN = 64;

/**
 * A row the ledger has still to judge: its fields, or (a line csvRecords split itself) the line they
 * come from, split again only should the ledger reject the row. Most rows are recorded, and an
 * array of fields a row kept until its batch is written was ~5 % of a large import's time, in
 * garbage collection.
 */
interface PendingRow {
  line: number;
  fields?: string[];
  text?: string;
  /** The field-count hint of a row whose values may sit in the wrong columns, for a rejection by the rules. */
  shape?: string;
}

/**
 * Streams a CSV in the İYS bulk columns into the ledger: each row through statementToAction and the
 * İYS rules (Ledger.apply), `batchSize` rows a transaction, constant memory (the parser is pulled,
 * so a slow ledger slows the reader). Idempotency covers each row's normalised content (the ledger
 * compares it with the recipient's events), so a re-run of the same file records nothing new.
 */
const ENQUEUE_CHUNK = 5000;

export async function runImport(source: AsyncIterable<Uint8Array | string>, deps: ImportDeps, opts: ImportOptions): Promise<ImportSummary> {
  const started = performance.now();
  const batchSize = opts.batchSize ?? 5000;
  const counts: ImportCounts = { rowsRead: 0, recorded: 0, unchanged: 0, rejected: 0, bytesRead: 0, bytesTotal: opts.bytesTotal ?? null };
  const codes: Record<string, number> = {};
  // Spreadsheets set to Turkish save CSV with ";" between fields: the header row says which it is.
  const read = { encoding: "utf-8" as ImportEncoding };
  // What has been read; `counts` is what has been written (a batch's rows are counted once it is in the ledger).
  const reading = { rowsRead: 0, bytesRead: 0 };
  const { delimiter, sepLine, chunks } = await sniffDelimiter(asUtf8(counted(source, reading, opts.maxBytes), read)).catch((err: unknown) => {
    if (err instanceof TooLargeError) throw new ImportTooLargeError(err.message);
    throw err instanceof NotRowsError ? new ImportFormatError(`the CSV is malformed: ${err.message}`) : err;
  });
  const records = csvRecords(chunks, delimiter);

  let id: string | null = null;
  let idx: number[] | null = null;
  /** A record's values in the İYS columns' order (IMPORT_COLUMNS), trimmed: "" for a column the file lacks. */
  const fieldsOf = (record: string[]) => idx!.map((i) => (i === -1 ? "" : (record[i] ?? "").trim()));
  let headerLength = 0;
  /** The state export's `iys` column, or -1. */
  let iysIdx = -1;
  /** Fields a row needs to reach every required column. */
  let requiredSpan = 0;
  /** The line the last whole record ended on. */
  let lastLine = 0;
  let batch = newBatch();
  let enqueueing: Promise<void> = Promise.resolve();
  // A few thousand rows a call: each call must finish within the runtime's enqueue timeout (a big
  // batch's rows in one call gave up on a busy machine, leaving the rest of the batch unawaited).
  const enqueueInChunks = async (refs: OutboxRef[]) => {
    for (let k = 0; k < refs.length; k += ENQUEUE_CHUNK) await deps.enqueueOutbox(refs.slice(k, k + ENQUEUE_CHUNK));
  };

  const db = deps.db;
  const now = () => deps.clock.now().getTime();
  const SQL = {
    rejection: `INSERT INTO import_rejections (import_id, line, code, message, fields) VALUES (?, ?, ?, ?, ?)`,
    counts: `UPDATE imports SET rows_read = ?, recorded = ?, unchanged = ?, rejected = ?, bytes_read = ?, updated_at = ? WHERE id = ?`,
  };
  const rejectionArgs = (r: RejectedRow) => [id, r.line, r.code, r.message, JSON.stringify(r.fields)];
  const countsArgs = (c: ImportCounts) => [c.rowsRead, c.recorded, c.unchanged, c.rejected, c.bytesRead, now(), id];
  const insertRejection = stmt(db, SQL.rejection);
  const updateCounts = stmt(db, SQL.counts);
  const saveBatch = db.$client.transaction((rs: RejectedRow[]) => {
    for (const r of rs) insertRejection.run(rejectionArgs(r));
    updateCounts.run(countsArgs(counts));
  });
  const planner = (o: ActionOutcome[], derived: ActionOutcome[]) => iysBatchPlanner(o, undefined, derived);
  // Large batches are planned here and written by a thread of their own while the next is read
  // and planned (db/ledger-writer.ts); started with the first such batch. While the process runs
  // as many as it may (LedgerWriter.MAX_THREADS), batches go through Ledger.apply.
  let writer: LedgerWriter | null | undefined = opts.writerThread === false ? null : undefined;
  /**
   * The batches handed to the writer, not known to be written yet, oldest first: each with the records
   * its plan wrote and the counts the import has once it is in. A batch is handed over as soon as it
   * is planned, before the one the writer is writing is waited for (two at most): the writer finds
   * the next one waiting when it finishes. Handed over after that wait, it sat idle while the import
   * took its result and copied the next plan over.
   */
  const inflight: { batch: Batch; judged: Judged; result: Promise<WriteResult>; recipients: ReadonlyMap<number, ReadonlyMap<string, unknown>>; head: PlanHead; counts: ImportCounts }[] = [];
  /**
   * The share of its events' content hashes a plan works out here (Ledger.plan's contentHashes); the
   * writer works out the rest. The two threads share the hashing as they keep up with each other:
   * after each write for which the writer had to wait for the plan this thread takes less of it, after
   * each one it had the plan waiting for, more.
   */
  let hashShare = 0.5;

  /** The batch's rows as the ledger took them: how many it recorded and found there already, and the rejected rows (the file's own too, in line order). */
  const judge = (b: Batch, outcomes: ActionOutcome[]): Judged => {
    let recorded = 0;
    let unchanged = 0;
    const rejected = [...b.rejections];
    outcomes.forEach((o, i) => {
      if (o.kind === "recorded") recorded++;
      else if (o.kind === "duplicate") unchanged++;
      // Old consents are mostly the provider's base, registered on İYS before: say how to load those.
      else {
        const row = b.rows[i]!;
        const message = o.code !== "H467" ? o.message : !opts.registered ? messages.H467_HINT : b.notHeld.has(row.line) ? messages.H467_NOT_HELD : o.message;
        rejected.push({ line: row.line, fields: row.fields ?? fieldsOf(row.text!.split(delimiter)), code: o.code, message: `${message}${row.shape ?? ""}` });
      }
    });
    rejected.sort((x, y) => x.line - y.line);
    return { recorded, unchanged, rejected };
  };
  /** The counts once the batch is in, after the batches counted in `before`. */
  const countsAfter = (b: Batch, j: Judged, before: ImportCounts = counts): ImportCounts => ({
    ...before,
    rowsRead: b.rowsRead,
    bytesRead: b.bytesRead,
    recorded: before.recorded + j.recorded,
    unchanged: before.unchanged + j.unchanged,
    rejected: before.rejected + j.rejected.length,
  });

  /** A batch is in the ledger (`saved`: with its rejected rows and counts): counted, its rejected rows handed on, its outbox rows enqueued. */
  const finish = async (b: Batch, j: Judged, outbox: OutboxRef[], saved: boolean) => {
    Object.assign(counts, countsAfter(b, j));
    for (const r of j.rejected) codes[r.code] = (codes[r.code] ?? 0) + 1;
    if (!saved) saveBatch(j.rejected);
    if (opts.onRejected) for (const r of j.rejected) opts.onRejected(r);
    // One enqueue in flight at a time: Redis latency overlaps the next batch without piling up.
    await enqueueing;
    enqueueing = enqueueInChunks(outbox);
    opts.onProgress?.({ ...counts });
  };

  /** Through Ledger.apply on this connection. */
  const applyHere = async (b: Batch) => {
    const { outcomes, outbox } = b.actions.length ? deps.ledger.apply(b.actions, { outbox: planner }) : { outcomes: [], outbox: [] };
    await finish(b, judge(b, outcomes), outbox, false);
  };

  /**
   * Waits for the oldest batch handed to the writer; one whose plan another process's write overtook
   * is applied here, and so are the batches handed over after it (their plans went on from its head,
   * which the writer never left: it refuses them the same way). A failed write drops the batches
   * after it unapplied: nothing after the rows that could not be written goes in.
   */
  // After a batch another process's write overtook, the next ones go through Ledger.apply (1, 2, 4 …
  // up to 32 of them): under steady writes elsewhere (a hub taking refusals) a plan would mostly be
  // made for nothing.
  let inPlace = 0;
  let inPlaceNext = 1;
  /** Whether the last batch settled was overtaken: the ones handed over after it were planned on top of it. */
  let overtaken = false;
  const settle = async (): Promise<void> => {
    const f = inflight.shift();
    if (!f) return;
    let r: WriteResult;
    try {
      r = await f.result;
    } catch (err) {
      inflight.length = 0;
      throw err;
    }
    hashShare = Math.min(1, Math.max(0, hashShare + (r.waited ? -0.05 : 0.05)));
    if (r.moved) {
      if (!overtaken) {
        inPlace = inPlaceNext;
        inPlaceNext = Math.min(inPlaceNext * 2, 32);
      }
      overtaken = true;
      await applyHere(f.batch);
      return;
    }
    overtaken = false;
    inPlaceNext = 1;
    await finish(f.batch, f.judged, r.outbox, true);
  };
  const settleAll = async () => {
    while (inflight.length) await settle();
  };

  const flush = async () => {
    const b = batch;
    batch = newBatch();
    b.rowsRead = reading.rowsRead;
    b.bytesRead = reading.bytesRead;
    if (inPlace > 0) inPlace--;
    else if (writer !== null && b.actions.length >= PLAN_MIN && (writer !== undefined || LedgerWriter.available(db))) {
      // A plan reads the ledger as the batches before leave it: not yet, for those batches' recipients.
      if (inflight.length && b.actions.some((a) => inflight.some((f) => f.recipients.get(a.brandId)?.has(a.recipient)))) await settleAll();
      const last = inflight.at(-1);
      const planned = deps.ledger.plan(b.actions, { outbox: planner, after: last?.head ?? null, contentHashes: hashShare });
      if (planned) {
        const judged = judge(b, planned.outcomes);
        // Taken meanwhile by another import of the process: this batch (and the next, until one is free) in place.
        writer ??= LedgerWriter.open(db, SQL) ?? undefined;
        if (writer) {
          const after = countsAfter(b, judged, last?.counts ?? counts);
          const runs: [string, unknown[]][] = judged.rejected.map((r) => ["rejection", rejectionArgs(r)]);
          runs.push(["counts", countsArgs(after)]);
          const result = writer.write(planned.plan, runs);
          const flight = { batch: b, judged, result, recipients: planned.recipients, head: planned.plan.head, counts: after };
          // Awaited by settle; until then a failed write (a lock held past busy_timeout, a full disk)
          // must not be an unhandled rejection, which ends the process.
          result.catch(() => {});
          inflight.push(flight);
          // The writer has this batch waiting while it writes the one before, which is waited for now.
          if (inflight.length > 1) await settle();
          return;
        }
      }
    }
    await settleAll();
    await applyHere(b);
  };

  let heartbeat: ReturnType<typeof setInterval> | undefined;
  try {
    for await (const chunk of records) for (let k = 0; k < chunk.length; k++) {
      const [line, record] = chunk[k]!;
      lastLine = line;
      // Excel's "sep=;" line, read by sniffDelimiter: the header is the next line.
      if (sepLine && line === 1) continue;
      if (!idx) {
        idx = columnIndexes(record);
        headerLength = record.length;
        requiredSpan = Math.max(...REQUIRED_COLUMNS.map((c) => idx![IMPORT_COLUMNS.indexOf(c)]!)) + 1;
        iysIdx = record.findIndex((h) => h.trim().toLowerCase() === STATE_IYS_COLUMN);
        id = randomUUID();
        const t = now();
        stmt(db, `INSERT INTO imports (id, brand_id, via, registered, status, delimiter, bytes_total, started_at, updated_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)`).run(
          id, opts.brandId, opts.via, opts.registered ? 1 : 0, delimiter, counts.bytesTotal, t, t,
        );
        const alive = stmt(db, `UPDATE imports SET updated_at = ? WHERE id = ? AND status = 'running'`);
        const importId = id;
        heartbeat = setInterval(() => {
          try {
            alive.run(now(), importId);
          } catch {
            // busy: the next beat
          }
        }, opts.heartbeatMs ?? IMPORT_HEARTBEAT_MS);
        heartbeat.unref();
        opts.onStart?.(id, delimiter);
        continue;
      }
      // A line of blanks (spaces, or only separators: the rows a spreadsheet leaves below its data) is no row, as an empty line is not.
      if (!record[0]?.trim() && record.every((f) => !f.trim())) continue;
      reading.rowsRead++;
      const fields = fieldsOf(record);
      // A state export's row İYS does not hold is no record of İYS's, whatever --registered says.
      const notHeld = iysIdx !== -1 && (record[iysIdx] ?? "").trim().toLowerCase() === "not_held";
      const r = rowToAction(fields, opts.brandId, opts.registered && !notHeld ? "registered" : "import");
      if (notHeld && opts.registered && r.ok) batch.notHeld.add(line);
      // Values in the wrong columns are the likely cause of a rejection: say so (a separator missing,
      // or one in an unquoted value), whether the row is refused here or by the rules (a required
      // column left empty). Not for a row that leaves out trailing optional columns only.
      const shifted = record.length > headerLength ? record.slice(headerLength).some((f) => f.trim() !== "") : record.length < requiredSpan;
      const shape = shifted ? ` (satırda ${record.length}, başlık satırında ${headerLength} alan var)` : "";
      if (r.ok) {
        batch.actions.push(r.action);
        const text = chunk.lines?.[k];
        const row: PendingRow = text !== undefined ? { line, text } : { line, fields };
        if (shifted) row.shape = shape;
        batch.rows.push(row);
      } else {
        batch.rejections.push({ line, fields, code: r.code, message: `${r.message}${shape}` });
      }
      if (batch.actions.length + batch.rejections.length >= batchSize) await flush();
    }
    if (!idx || !id) throw new ImportFormatError(`the file is empty: a header row is required (${IMPORT_COLUMNS.join(",")})`);
    await flush();
    await settleAll();
    await enqueueing;
    const t = now();
    stmt(db, `UPDATE imports SET status = 'done', finished_at = ?, updated_at = ? WHERE id = ?`).run(t, t, id);
    return { id, status: "done", registered: opts.registered === true, ...counts, codes, encoding: read.encoding, seconds: Number(((performance.now() - started) / 1000).toFixed(3)) };
  } catch (err) {
    await records.return(undefined).catch(() => {});
    let e = err;
    const broken = err instanceof CsvError ? csvProblem(err, lastLine) : err instanceof NotRowsError ? err.message : null;
    const tooLarge = err instanceof TooLargeError ? err.message : null;
    const cut = err instanceof SourceCutError ? `the file stopped before its end (${err.message})` : null;
    const problem = broken !== null ? `the CSV is malformed: ${broken}` : (tooLarge ?? cut);
    /** A write that failed while the import stopped for its source's problem. */
    let unwritten = null as Error | null;
    const unwrittenBy = (err: unknown) => void (unwritten ??= err instanceof Error ? err : new Error(String(err)));
    if (problem !== null) {
      // The rows read before the break are whole and valid rows: written like any batch, so what is
      // in the ledger is exactly the file up to the break (not up to the last full batch).
      // The status is written before the last enqueue is waited for (below): a process stopped
      // while Redis is slow leaves the import marked failed, and the sweeper enqueues its outbox rows.
      if (id) await flush().catch(unwrittenBy);
    }
    // A batch handed to the writer is counted (it may be in) before the import is marked failed.
    await settleAll().catch(unwrittenBy);
    if (problem !== null) {
      const advice = `${tooLarge ? "send the rest as another file" : cut ? "send the file again" : "send the fixed file again"} (rows already in stay unchanged)`;
      // A write failed too (the lock held past busy_timeout, a full disk): fewer rows are in than were before the break.
      const kept = !id
        ? ""
        : unwritten
          ? counts.rowsRead === 0
            ? `; nothing was written: writing the rows before it failed (${unwritten.message}; import ${id} is marked failed): ${advice}`
            : `; the first ${counts.rowsRead} rows are in import ${id} (recorded ${counts.recorded}, unchanged ${counts.unchanged}, rejected ${counts.rejected}), nothing after them: writing the next ones failed (${unwritten.message}): ${advice}`
          : counts.rowsRead === 0
            ? `; no row was before it: nothing was written (import ${id} is marked failed)`
            : `; the ${counts.rowsRead} rows before it are in import ${id} (recorded ${counts.recorded}, unchanged ${counts.unchanged}, rejected ${counts.rejected}), nothing after it: ${advice}`;
      e = tooLarge ? new ImportTooLargeError(`${problem}${kept}`, [], id) : new ImportFormatError(`${problem}${kept}`, [], id);
    }
    if (id) {
      const t = now();
      stmt(db, `UPDATE imports SET status = 'failed', error = ?, rows_read = ?, recorded = ?, unchanged = ?, rejected = ?, bytes_read = ?, finished_at = ?, updated_at = ? WHERE id = ?`).run(
        (e as Error).message, counts.rowsRead, counts.recorded, counts.unchanged, counts.rejected, counts.bytesRead, t, t, id,
      );
    }
    await enqueueing.catch(() => {});
    throw e;
  } finally {
    clearInterval(heartbeat);
    // Assigned in flush (a closure): not narrowed here.
    await (writer as LedgerWriter | null | undefined)?.close();
  }
}

export interface ImportRecord extends ImportCounts {
  id: string;
  brandId: number;
  via: string;
  registered: boolean;
  status: "running" | "done" | "failed";
  /** The file's field separator (`,` or `;`): its rejected-rows CSV uses the same. */
  delimiter: string;
  error: string | null;
  startedAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

const IMPORT_SELECT = `SELECT id, brand_id AS brandId, via, registered, status, delimiter, rows_read AS rowsRead, recorded, unchanged, rejected,
  bytes_read AS bytesRead, bytes_total AS bytesTotal, error, started_at AS startedAt, updated_at AS updatedAt, finished_at AS finishedAt FROM imports`;

type RawImport = Omit<ImportRecord, "registered"> & { registered: number };
const toImport = (r: RawImport): ImportRecord => ({ ...r, registered: r.registered === 1 });

export function importById(db: Db, id: string): ImportRecord | null {
  const r = stmt(db, `${IMPORT_SELECT} WHERE id = ?`).get(id) as RawImport | undefined;
  return r ? toImport(r) : null;
}

export function importsOfBrand(db: Db, brandId: number, limit = 50): ImportRecord[] {
  return (stmt(db, `${IMPORT_SELECT} WHERE brand_id = ? ORDER BY started_at DESC, id LIMIT ?`).all(brandId, limit) as RawImport[]).map(toImport);
}
