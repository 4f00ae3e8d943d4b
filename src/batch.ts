/**
 * Collects items pushed in the same tick (or until `max`) and hands them to `flush` together: one
 * Redis round trip for many webhooks instead of one each. Flushes never overlap; `drain` waits for
 * everything pushed so far.
 */
export class MicroBatcher<T> {
  private items: T[] = [];
  private scheduled = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly flush: (items: T[]) => Promise<void>,
    private readonly onError: (err: unknown, items: T[]) => void,
    private readonly max = 500,
  ) {}

  push(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.max) this.kick();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.kick());
    }
  }

  private kick(): void {
    this.scheduled = false;
    if (this.items.length === 0) return;
    const batch = this.items;
    this.items = [];
    this.running = this.running.then(() => this.flush(batch).catch((err: unknown) => this.onError(err, batch)));
  }

  async drain(): Promise<void> {
    this.kick();
    await this.running;
  }
}
