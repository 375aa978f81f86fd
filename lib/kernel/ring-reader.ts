/**
 * Drains one BPF ring buffer on the JS thread, in batches. The kernel side never wakes us
 * (BPF_RB_NO_WAKEUP): a timer polls instead, because a wakeup per event costs about ten times the
 * event itself. A drain stops after `budget` events so a flooded ring cannot stall the event loop;
 * what is left stays in the ring for the next drain.
 */
import { JSCallback, toArrayBuffer, type Pointer } from "bun:ffi";
import { check, checkPtr, libbpf } from "./libbpf.ts";

const STOP = -125; // any negative value stops ring_buffer__consume after the current sample

export class RingReader {
  private readonly ring: Pointer;
  private readonly callback: JSCallback;
  private handled = 0;
  private budget = 0;
  private failure: unknown;

  constructor(fd: number, onSample: (bytes: Uint8Array) => void) {
    // Must not be threadsafe: libbpf calls it synchronously inside consume, and the sample is only
    // valid until it returns, so it is decoded (copied out) right here.
    this.callback = new JSCallback(
      (_ctx: Pointer, data: Pointer, size: number) => {
        try {
          onSample(new Uint8Array(toArrayBuffer(data, 0, size)));
        } catch (err) {
          // An exception must not unwind through libbpf: stop here, rethrow after consume returns.
          this.failure = err;
          return STOP;
        }
        return ++this.handled >= this.budget ? STOP : 0;
      },
      { args: ["ptr", "ptr", "u32"], returns: "i32" },
    );
    this.ring = checkPtr(libbpf().ring_buffer__new(fd, this.callback.ptr, null, null), "cannot open the ring buffer");
  }

  /** Hands up to `budget` samples to the callback; returns how many. */
  drain(budget: number): number {
    this.handled = 0;
    this.budget = budget;
    this.failure = undefined;
    const ret = libbpf().ring_buffer__consume(this.ring);
    if (this.failure !== undefined) throw this.failure;
    if (ret < 0 && ret !== STOP) check(ret, "cannot read the ring buffer");
    return this.handled;
  }

  close() {
    libbpf().ring_buffer__free(this.ring);
    this.callback.close();
  }
}
