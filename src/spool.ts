import { createHash, randomUUID } from "node:crypto";
import { closeSync, createReadStream, openSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";

export interface Spooled {
  /** Bytes written. */
  size: number;
  /** SHA-384 of those bytes, lower-case hex. */
  sha384: string;
  /** The bytes as a response body (once); the file goes when the stream ends or is cancelled. */
  body(): ReadableStream<Uint8Array>;
  /** Drops the file without reading it. */
  discard(): void;
}

/**
 * Writes `chunks` to a temporary file and hashes them on the way, so that a body made inside a
 * read transaction is sent after the transaction ends: a client that reads slowly, never reads (a
 * HEAD), or goes away holds no snapshot of the database (a reader left open stops every WAL
 * checkpoint). The file is unlinked as soon as it is opened (mode 0600): its bytes — personal data —
 * live only as long as the open descriptor, and nothing is left behind by a crash.
 */
export function spool(chunks: Iterable<string>): Spooled {
  const path = join(tmpdir(), `hub-spool-${randomUUID()}`);
  const fd = openSync(path, "wx+", 0o600);
  unlinkSync(path);
  let open = true;
  const discard = () => {
    if (!open) return;
    open = false;
    closeSync(fd);
  };
  try {
    const hash = createHash("sha384");
    let size = 0;
    let pending = "";
    const flush = () => {
      const bytes = Buffer.from(pending, "utf8");
      pending = "";
      hash.update(bytes);
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at, size + at);
      size += bytes.length;
    };
    for (const chunk of chunks) {
      pending += chunk;
      if (pending.length >= 64 * 1024) flush();
    }
    if (pending) flush();
    return {
      size,
      sha384: hash.digest("hex"),
      body() {
        if (!open) throw new Error("spooled body already taken");
        open = false;
        // autoClose: the descriptor is closed when the stream ends, fails or is destroyed (a client gone).
        return Readable.toWeb(createReadStream("", { fd, start: 0, autoClose: true })) as ReadableStream<Uint8Array>;
      },
      discard,
    };
  } catch (err) {
    discard();
    throw err;
  }
}
